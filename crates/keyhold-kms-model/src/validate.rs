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

    /// Every member of every input, nested members included, set to values of every JSON type:
    /// the walker must not panic and must only ever report well-formed violations.
    #[test]
    fn no_panic_on_any_member_value() {
        let samples = [
            Value::Null,
            json!(true),
            json!(0),
            json!(-1),
            json!(u64::MAX),
            json!(1e300),
            json!(""),
            json!("é".repeat(3000)),
            json!("===="),
            json!([]),
            json!([null, 1, "x", {}]),
            json!({}),
            json!({ "k": null, "": [] }),
        ];
        fn fill(shape: &Shape, sample: &Value, depth: usize) -> Value {
            match &shape.kind {
                Kind::Structure(members) if depth < 4 => Value::Object(
                    members
                        .iter()
                        .map(|m| (m.name.to_owned(), fill(m.shape, sample, depth + 1)))
                        .collect(),
                ),
                Kind::List { member, .. } if depth < 4 => {
                    Value::Array(vec![fill(member, sample, depth + 1), sample.clone()])
                }
                _ => sample.clone(),
            }
        }
        for op in Operation::ALL {
            for sample in &samples {
                let input = fill(op.input_descriptor(), sample, 0);
                if let Err(e) = validate_input(*op, &input) {
                    assert!(!e.violations.is_empty());
                    assert!(e.message.contains(" validation error"));
                    for v in &e.violations {
                        assert!(!v.path.is_empty() && !v.path.starts_with('.'), "{v}");
                    }
                }
            }
        }
    }
}
