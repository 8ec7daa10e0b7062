//! The result of evaluating one flag.

use flagwire_proto::v1::{ErrorCode, EvaluationResult, FlagValue, Reason};

/// What evaluation served, borrowed from the snapshot so the hot path does not allocate.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    /// The value served; `None` on error (the caller's default applies).
    pub value: Option<&'a FlagValue>,
    /// The variant served; empty on error.
    pub variant: &'a str,
    /// Why.
    pub reason: Reason,
    /// Set when `reason` is [`Reason::Error`].
    pub error_code: ErrorCode,
    /// Detail for an error; empty otherwise.
    pub error_message: &'static str,
    /// The evaluated flag's version (0 when the flag was not found).
    pub flag_version: u64,
    /// The label of the split entry served, if any.
    pub cohort: &'a str,
    /// The rollout owning the split served, if any (SDKs tag their metrics with it).
    pub rollout_id: &'a str,
}

impl<'a> Evaluation<'a> {
    /// An error result.
    pub fn error(code: ErrorCode, message: &'static str, flag_version: u64) -> Self {
        Self {
            value: None,
            variant: "",
            reason: Reason::Error,
            error_code: code,
            error_message: message,
            flag_version,
            cohort: "",
            rollout_id: "",
        }
    }

    /// The wire form, for remote evaluation.
    pub fn to_proto(&self, flag_key: &str) -> EvaluationResult {
        EvaluationResult {
            flag_key: flag_key.to_owned(),
            value: self.value.cloned(),
            variant: self.variant.to_owned(),
            reason: self.reason as i32,
            error_code: self.error_code as i32,
            error_message: self.error_message.to_owned(),
            flag_version: self.flag_version,
            cohort: self.cohort.to_owned(),
            rollout_id: self.rollout_id.to_owned(),
        }
    }
}

/// The OpenFeature name of a reason (`TARGETING_MATCH`), identical in every SDK.
pub fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::Unspecified => "UNKNOWN",
        Reason::Static => "STATIC",
        Reason::TargetingMatch => "TARGETING_MATCH",
        Reason::Split => "SPLIT",
        Reason::Disabled => "DISABLED",
        Reason::PrerequisiteFailed => "PREREQUISITE_FAILED",
        Reason::Error => "ERROR",
    }
}

/// The OpenFeature name of an error code (`FLAG_NOT_FOUND`); `None` for no error.
pub fn error_code_name(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        ErrorCode::Unspecified => return None,
        ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
        ErrorCode::TypeMismatch => "TYPE_MISMATCH",
        ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        ErrorCode::InvalidContext => "INVALID_CONTEXT",
        ErrorCode::General => "GENERAL",
        ErrorCode::ProviderNotReady => "PROVIDER_NOT_READY",
        ErrorCode::ParseError => "PARSE_ERROR",
    })
}
