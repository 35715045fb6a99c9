//! Typed view of the parts of a botocore service model that codegen uses.
//!
//! Only facts are read (names, types, constraints, traits); `documentation` is ignored.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};

use crate::json::Json;

/// The parsed service model.
#[derive(Debug)]
pub struct Model {
    pub target_prefix: String,
    /// Sorted by name.
    pub operations: Vec<Operation>,
    pub shapes: BTreeMap<String, Shape>,
}

#[derive(Debug)]
pub struct Operation {
    pub name: String,
    pub input: String,
    pub output: Option<String>,
    /// In model order.
    pub errors: Vec<String>,
}

#[derive(Debug)]
pub struct Shape {
    pub name: String,
    pub sensitive: bool,
    pub deprecated: bool,
    pub kind: Kind,
}

#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub shape: String,
    pub required: bool,
    pub deprecated: bool,
}

#[derive(Debug)]
pub enum Kind {
    Structure {
        /// In model order.
        members: Vec<Member>,
        exception: bool,
        /// `true` for server faults (`"fault": true`).
        server_fault: bool,
        /// `error.httpStatusCode`, when the model states one.
        http_status: Option<u16>,
    },
    List {
        member: String,
        min: Option<i64>,
        max: Option<i64>,
    },
    Map {
        key: String,
        value: String,
        min: Option<i64>,
        max: Option<i64>,
    },
    String {
        min: Option<i64>,
        max: Option<i64>,
        pattern: Option<String>,
        /// In model order; empty when the string is not an enum.
        enum_values: Vec<String>,
    },
    Blob {
        min: Option<i64>,
        max: Option<i64>,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Long {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    Timestamp,
}

impl Shape {
    pub fn is_enum(&self) -> bool {
        matches!(&self.kind, Kind::String { enum_values, .. } if !enum_values.is_empty())
    }

    pub fn is_exception(&self) -> bool {
        matches!(
            &self.kind,
            Kind::Structure {
                exception: true,
                ..
            }
        )
    }
}

fn shape_ref(j: Option<&Json>, what: &str) -> Result<String> {
    j.and_then(|j| j.get("shape"))
        .and_then(Json::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("missing shape reference `{what}`"))
}

fn int(j: &Json, key: &str) -> Result<Option<i64>> {
    match j.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| anyhow!("`{key}` is not an integer")),
    }
}

fn flag(j: &Json, key: &str) -> bool {
    j.get(key).and_then(Json::as_bool).unwrap_or(false)
}

fn parse_shape(name: &str, j: &Json) -> Result<Shape> {
    let ty = j
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| anyhow!("shape has no type"))?;
    let (min, max) = (int(j, "min")?, int(j, "max")?);
    let kind = match ty {
        "structure" => {
            let required: Vec<&str> = j
                .get("required")
                .and_then(Json::as_array)
                .unwrap_or(&[])
                .iter()
                .map(|r| {
                    r.as_str()
                        .ok_or_else(|| anyhow!("non-string in `required`"))
                })
                .collect::<Result<_>>()?;
            let members_json = j
                .get("members")
                .and_then(Json::as_object)
                .ok_or_else(|| anyhow!("structure without members"))?;
            let mut members = Vec::new();
            for (mname, mj) in members_json {
                members.push(Member {
                    name: mname.clone(),
                    shape: shape_ref(Some(mj), mname)?,
                    required: required.contains(&mname.as_str()),
                    deprecated: flag(mj, "deprecated"),
                });
            }
            for r in &required {
                if !members.iter().any(|m| m.name == *r) {
                    bail!("required member `{r}` is not a member");
                }
            }
            let http_status = match j.get("error").and_then(|e| e.get("httpStatusCode")) {
                None => None,
                Some(v) => Some(
                    v.as_i64()
                        .and_then(|s| u16::try_from(s).ok())
                        .ok_or_else(|| anyhow!("bad httpStatusCode"))?,
                ),
            };
            Kind::Structure {
                members,
                exception: flag(j, "exception"),
                server_fault: flag(j, "fault"),
                http_status,
            }
        }
        "list" => Kind::List {
            member: shape_ref(j.get("member"), "member")?,
            min,
            max,
        },
        "map" => Kind::Map {
            key: shape_ref(j.get("key"), "key")?,
            value: shape_ref(j.get("value"), "value")?,
            min,
            max,
        },
        "string" => Kind::String {
            min,
            max,
            pattern: j.get("pattern").and_then(Json::as_str).map(str::to_owned),
            enum_values: j
                .get("enum")
                .and_then(Json::as_array)
                .unwrap_or(&[])
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("non-string enum value"))
                })
                .collect::<Result<_>>()?,
        },
        "blob" => Kind::Blob { min, max },
        "integer" => Kind::Integer { min, max },
        "long" => Kind::Long { min, max },
        "boolean" => Kind::Boolean,
        "timestamp" => Kind::Timestamp,
        other => bail!("unsupported shape type `{other}` (extend xtask to support it)"),
    };
    Ok(Shape {
        name: name.to_owned(),
        sensitive: flag(j, "sensitive"),
        deprecated: flag(j, "deprecated"),
        kind,
    })
}

impl Model {
    pub fn parse(bytes: &[u8]) -> Result<Model> {
        let root: Json = serde_json::from_slice(bytes).context("service model is not JSON")?;
        let target_prefix = root
            .get("metadata")
            .and_then(|m| m.get("targetPrefix"))
            .and_then(Json::as_str)
            .ok_or_else(|| anyhow!("metadata.targetPrefix missing"))?
            .to_owned();

        let mut shapes = BTreeMap::new();
        for (name, sj) in root
            .get("shapes")
            .and_then(Json::as_object)
            .ok_or_else(|| anyhow!("`shapes` missing"))?
        {
            let shape = parse_shape(name, sj).with_context(|| format!("shape `{name}`"))?;
            shapes.insert(name.clone(), shape);
        }

        let mut operations = Vec::new();
        for (name, oj) in root
            .get("operations")
            .and_then(Json::as_object)
            .ok_or_else(|| anyhow!("`operations` missing"))?
        {
            let op = (|| -> Result<Operation> {
                Ok(Operation {
                    name: name.clone(),
                    input: shape_ref(oj.get("input"), "input")?,
                    output: match oj.get("output") {
                        None => None,
                        Some(o) => Some(shape_ref(Some(o), "output")?),
                    },
                    errors: oj
                        .get("errors")
                        .and_then(Json::as_array)
                        .unwrap_or(&[])
                        .iter()
                        .map(|e| shape_ref(Some(e), "errors[]"))
                        .collect::<Result<_>>()?,
                })
            })()
            .with_context(|| format!("operation `{name}`"))?;
            operations.push(op);
        }
        operations.sort_by(|a, b| a.name.cmp(&b.name));

        let model = Model {
            target_prefix,
            operations,
            shapes,
        };
        model.check_references()?;
        Ok(model)
    }

    pub fn shape(&self, name: &str) -> &Shape {
        // References are checked in `parse`.
        &self.shapes[name]
    }

    fn check_references(&self) -> Result<()> {
        let check = |r: &str, from: &str| -> Result<()> {
            if self.shapes.contains_key(r) {
                Ok(())
            } else {
                bail!("`{from}` refers to unknown shape `{r}`")
            }
        };
        for op in &self.operations {
            check(&op.input, &op.name)?;
            if let Some(o) = &op.output {
                check(o, &op.name)?;
            }
            for e in &op.errors {
                check(e, &op.name)?;
                if !self.shape(e).is_exception() {
                    bail!("operation `{}` error `{e}` is not an exception", op.name);
                }
            }
        }
        for s in self.shapes.values() {
            match &s.kind {
                Kind::Structure { members, .. } => {
                    for m in members {
                        check(&m.shape, &s.name)?;
                    }
                }
                Kind::List { member, .. } => check(member, &s.name)?,
                Kind::Map { key, value, .. } => {
                    check(key, &s.name)?;
                    check(value, &s.name)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Shapes reachable from `roots`, sorted by name.
    pub fn reachable<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> Vec<&Shape> {
        let mut seen = BTreeMap::new();
        let mut stack: Vec<&str> = roots.into_iter().collect();
        while let Some(n) = stack.pop() {
            if seen.contains_key(n) {
                continue;
            }
            let s = self.shape(n);
            seen.insert(n.to_owned(), s);
            match &s.kind {
                Kind::Structure { members, .. } => {
                    stack.extend(members.iter().map(|m| m.shape.as_str()))
                }
                Kind::List { member, .. } => stack.push(member),
                Kind::Map { key, value, .. } => {
                    stack.push(key);
                    stack.push(value);
                }
                _ => {}
            }
        }
        seen.into_values().collect()
    }

    /// Input shapes of all operations.
    pub fn input_roots(&self) -> impl Iterator<Item = &str> {
        self.operations.iter().map(|o| o.input.as_str())
    }

    /// Input and output shapes of all operations.
    pub fn io_roots(&self) -> impl Iterator<Item = &str> {
        self.operations
            .iter()
            .flat_map(|o| std::iter::once(o.input.as_str()).chain(o.output.as_deref()))
    }
}
