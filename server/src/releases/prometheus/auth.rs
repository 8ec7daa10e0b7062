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

/// The secret in `path`: its content without the trailing line break an editor adds. Errors
/// name the file and the flag, never the content.
fn secret(path: &Path, flag: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{flag} {}: cannot read it: {e}", path.display()))?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.is_empty() {
        return Err(format!("{flag} {}: the file is empty", path.display()));
    }
    Ok(text.to_owned())
}

impl PrometheusAuth {
    /// The `Authorization` header to send now (marked sensitive, so no log prints it); `None`
    /// without credentials. Reads the secret's file: a small local file, once per query.
    pub fn header(&self) -> Result<Option<HeaderValue>, String> {
        let value = match self {
            PrometheusAuth::None => return Ok(None),
            PrometheusAuth::BearerFile(path) => {
                format!("Bearer {}", secret(path, "--prometheus-bearer-token-file")?)
            }
            PrometheusAuth::Basic {
                user,
                password_file,
            } => {
                let password = secret(password_file, "--prometheus-password-file")?;
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                format!("Basic {pair}")
            }
        };
        let mut header = HeaderValue::from_str(&value).map_err(|_| {
            "the Prometheus credentials hold characters an HTTP header cannot carry".to_owned()
        })?;
        header.set_sensitive(true);
        Ok(Some(header))
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
        self.header().map(drop)
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

    #[test]
    fn headers_carry_the_files_secret_without_its_line_break() {
        let token = file("t0ken\n");
        let bearer = PrometheusAuth::BearerFile(token.path().into());
        let header = bearer.header().unwrap().unwrap();
        assert_eq!(header, "Bearer t0ken");
        assert!(header.is_sensitive());
        let password = file("s3cret\r\n");
        let basic = PrometheusAuth::Basic {
            user: "flagwire".into(),
            password_file: password.path().into(),
        };
        // base64("flagwire:s3cret")
        assert_eq!(
            basic.header().unwrap().unwrap(),
            "Basic ZmxhZ3dpcmU6czNjcmV0"
        );
        assert_eq!(PrometheusAuth::None.header().unwrap(), None);
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
