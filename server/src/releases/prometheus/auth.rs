//! Credentials for Prometheus's HTTP API: a bearer token (Thanos, Mimir or an auth proxy in
//! front of Prometheus) or HTTP basic auth (Prometheus's own `basic_auth_users`, Grafana Cloud).
//! Secrets live in files, never on the command line (where `ps` shows them), and each file is
//! read again at every query, so a rotated token (a Kubernetes service-account token, say) is
//! picked up without a restart, as Prometheus itself does with `bearer_token_file`.

use base64::Engine;
use http::HeaderValue;
use std::path::{Path, PathBuf};

/// How the server authenticates to Prometheus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PrometheusAuth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`, TOKEN being the file's content
    /// (`--prometheus-bearer-token-file`).
    BearerFile(PathBuf),
    /// HTTP basic auth as `user` with the password in `password_file`
    /// (`--prometheus-basic-auth-user`, `--prometheus-password-file`).
    Basic {
        /// The user name.
        user: String,
        /// The file holding the password.
        password_file: PathBuf,
    },
}

/// The secret of the file at `path` whose content is `read`: without the trailing line break an
/// editor adds. Errors name the file and the flag, never the content.
fn secret(path: &Path, flag: &str, read: std::io::Result<String>) -> Result<String, String> {
    let text = read.map_err(|e| format!("{flag} {}: cannot read it: {e}", path.display()))?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.is_empty() {
        return Err(format!("{flag} {}: the file is empty", path.display()));
    }
    Ok(text.to_owned())
}

impl PrometheusAuth {
    /// The secret's file and the flag that named it; `None` without credentials.
    fn file(&self) -> Option<(&Path, &'static str)> {
        match self {
            PrometheusAuth::None => None,
            PrometheusAuth::BearerFile(path) => Some((path, "--prometheus-bearer-token-file")),
            PrometheusAuth::Basic { password_file, .. } => {
                Some((password_file, "--prometheus-password-file"))
            }
        }
    }

    /// The `Authorization` header carrying `secret`, marked sensitive so that no log prints it.
    fn header_with(&self, secret: &str) -> Result<HeaderValue, String> {
        let value = match self {
            PrometheusAuth::Basic { user, .. } => {
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
                format!("Basic {pair}")
            }
            _ => format!("Bearer {secret}"),
        };
        let mut header = HeaderValue::from_str(&value).map_err(|_| {
            "the Prometheus credentials hold characters an HTTP header cannot carry".to_owned()
        })?;
        header.set_sensitive(true);
        Ok(header)
    }

    /// The `Authorization` header to send now, its file read again without blocking the
    /// runtime (the file may sit on a slow mount); `None` without credentials.
    pub async fn header(&self) -> Result<Option<HeaderValue>, String> {
        let Some((path, flag)) = self.file() else {
            return Ok(None);
        };
        let secret = secret(path, flag, tokio::fs::read_to_string(path).await)?;
        self.header_with(&secret).map(Some)
    }

    /// Checks the credentials at start: a user name basic auth can carry, and a readable,
    /// non-empty secret, so that a typo fails the start rather than every gate later.
    pub fn check(&self) -> Result<(), String> {
        if let PrometheusAuth::Basic { user, .. } = self
            && (user.is_empty() || user.contains(':'))
        {
            return Err(format!(
                "--prometheus-basic-auth-user {user:?}: must be non-empty and without ':' \
                 (basic auth separates the user from the password with it)"
            ));
        }
        let Some((path, flag)) = self.file() else {
            return Ok(());
        };
        let secret = secret(path, flag, std::fs::read_to_string(path))?;
        self.header_with(&secret).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), content).unwrap();
        f
    }

    #[tokio::test]
    async fn headers_carry_the_files_secret_without_its_line_break() {
        let token = file("t0ken\n");
        let bearer = PrometheusAuth::BearerFile(token.path().into());
        let header = bearer.header().await.unwrap().unwrap();
        assert_eq!(header, "Bearer t0ken");
        assert!(header.is_sensitive());
        let password = file("s3cret\r\n");
        let basic = PrometheusAuth::Basic {
            user: "flagwire".into(),
            password_file: password.path().into(),
        };
        // base64("flagwire:s3cret")
        assert_eq!(
            basic.header().await.unwrap().unwrap(),
            "Basic ZmxhZ3dpcmU6czNjcmV0"
        );
        assert_eq!(PrometheusAuth::None.header().await.unwrap(), None);
    }

    #[test]
    fn bad_credentials_are_named_without_their_content() {
        let empty = file("\n");
        let two_lines = file("two\nlines");
        let cases = [
            (
                PrometheusAuth::BearerFile("/nonexistent/token".into()),
                "--prometheus-bearer-token-file /nonexistent/token: cannot read it",
            ),
            (
                PrometheusAuth::BearerFile(empty.path().into()),
                "the file is empty",
            ),
            (
                PrometheusAuth::Basic {
                    user: "a:b".into(),
                    password_file: empty.path().into(),
                },
                "must be non-empty and without ':'",
            ),
            (
                PrometheusAuth::BearerFile(two_lines.path().into()),
                "characters an HTTP header cannot carry",
            ),
        ];
        for (auth, expected) in cases {
            let err = auth.check().unwrap_err();
            assert!(err.contains(expected), "{auth:?}: {err}");
        }
    }
}
