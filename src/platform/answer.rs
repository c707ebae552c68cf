//! What a backend makes of an answer it cannot use, the same for every backend: a refusal
//! names the request; an answer that makes no sense is a refusal too, except for the one
//! request whose lost answer leaves a post in doubt (then the outcome is unknown); JSON
//! errors are described by position only (serde's messages can quote values, secrets
//! among them).

use serde::de::DeserializeOwned;

use super::PublishError;

/// One kind of request a backend makes.
pub(crate) trait WireCall: Copy {
    /// Its name in log lines and error reasons.
    fn name(self) -> &'static str;
    /// Whether a lost or unreadable answer to it leaves its outcome unknown.
    fn lost_answer_is_unknown(self) -> bool;
}

/// The platform refused `call`, for `what` reason.
pub(crate) fn rejected(call: impl WireCall, what: impl std::fmt::Display) -> PublishError {
    PublishError::Rejected {
        reason: format!("{}: {what}", call.name()),
    }
}

/// An answer to `call` we cannot make sense of.
pub(crate) fn bad_answer(call: impl WireCall, what: impl std::fmt::Display) -> PublishError {
    let reason = format!("{}: unexpected response: {what}", call.name());
    if call.lost_answer_is_unknown() {
        PublishError::Unknown { reason }
    } else {
        PublishError::Rejected { reason }
    }
}

/// Parses `call`'s JSON answer.
pub(crate) fn parse<T: DeserializeOwned>(
    call: impl WireCall,
    body: &[u8],
) -> Result<T, PublishError> {
    serde_json::from_slice(body).map_err(|e| {
        bad_answer(
            call,
            format_args!(
                "not the expected JSON ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    enum Call {
        Step,
        Post,
    }

    impl WireCall for Call {
        fn name(self) -> &'static str {
            match self {
                Call::Step => "step",
                Call::Post => "post",
            }
        }
        fn lost_answer_is_unknown(self) -> bool {
            matches!(self, Call::Post)
        }
    }

    #[test]
    fn only_the_post_leaves_an_unreadable_answer_unknown() {
        assert!(matches!(
            bad_answer(Call::Step, "x"),
            PublishError::Rejected { .. }
        ));
        assert!(matches!(
            bad_answer(Call::Post, "x"),
            PublishError::Unknown { .. }
        ));
    }

    #[test]
    fn json_errors_never_quote_the_answer() {
        let secret = "tok-5f1e9a0b";
        let body = format!("{{\"a\": {secret}}}");
        let e = parse::<serde_json::Value>(Call::Step, body.as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains(secret), "{text}");
        assert!(
            text.contains("step: unexpected response") && text.contains("line 1"),
            "{text}"
        );
    }
}
