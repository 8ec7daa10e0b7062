//! What the `*_details` getters return.

use flagwire_proto::v1::{ErrorCode, Reason};

/// A value with the facts behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationDetails<T> {
    /// The value served, or the caller's default on error.
    pub value: T,
    /// The variant served; `None` on error.
    pub variant: Option<String>,
    /// Why the value was served.
    pub reason: Reason,
    /// Set when `reason` is [`Reason::Error`].
    pub error_code: Option<ErrorCode>,
    /// Detail of an error.
    pub error_message: Option<String>,
    /// The version of the flag evaluated (0 when not found).
    pub flag_version: u64,
    /// The split entry label served (canary cohorts), if any.
    pub cohort: Option<String>,
    /// The rollout owning the split served, if any.
    pub rollout_id: Option<String>,
}

impl<T> EvaluationDetails<T> {
    /// The OpenFeature reason name, e.g. `TARGETING_MATCH`.
    pub fn reason_name(&self) -> &'static str {
        flagwire_core::evaluation::reason_name(self.reason)
    }

    /// The OpenFeature error code name, e.g. `FLAG_NOT_FOUND`.
    pub fn error_code_name(&self) -> Option<&'static str> {
        self.error_code
            .and_then(flagwire_core::evaluation::error_code_name)
    }
}
