//! Model-driven input validation with AWS (Coral) `ValidationException` wording: the shared
//! walker of `keyhold-model-runtime` over this crate's generated constraint tables.

use serde_json::Value;

pub(crate) use keyhold_model_runtime::validate::{Kind, Member, Pattern, Shape};
pub use keyhold_model_runtime::validate::{ValidationError, Violation, ViolationValue};

use crate::Operation;

/// Checks the input JSON of `op` against the model's constraints (see
/// [`keyhold_model_runtime::validate`] for the rules). A body that is not a JSON object is not
/// checked here (deserialisation reports it).
pub fn validate_input(op: Operation, input: &Value) -> Result<(), ValidationError> {
    keyhold_model_runtime::validate::validate_shape(op.input_descriptor(), input)
}

/// The model's table of `op`'s input shape: which members are blobs, which are sensitive, and
/// their Coral (lowerCamelCase) names. The audit log walks it to decide what of a request it
/// may record, so a member added to the model is judged by its type, never by a hand-kept list.
pub fn input_shape(op: Operation) -> &'static Shape {
    op.input_descriptor()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_and_aws_wording() {
        assert_eq!(
            Operation::from_target("BaldrApiService.CreateCluster"),
            Some(Operation::CreateCluster)
        );
        assert_eq!(Operation::from_target("TrentService.CreateKey"), None);
        let e = validate_input(
            Operation::CreateCluster,
            &json!({"HsmType": "hsm1.medium", "SubnetIds": ["subnet-xyz"]}),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("1 validation error detected: Value"),
            "{}",
            e.message
        );
        assert!(e.message.contains("subnetIds.1.member"), "{}", e.message);
        assert!(validate_input(
            Operation::CreateCluster,
            &json!({"HsmType": "hsm1.medium", "SubnetIds": ["subnet-0123abcd"]}),
        )
        .is_ok());
    }
}
