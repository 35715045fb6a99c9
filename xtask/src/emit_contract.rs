//! Emits the service contract of a model crate: the `Exception` enum (every error the service
//! can answer, with fault and status) and `service.rs` (one trait method per operation, each
//! defaulting to the service's "unsupported" exception, and the dispatch that turns a request
//! body into a call of that method).
//!
//! Why generated: the compiler then ties `Operation::Encrypt` to `EncryptRequest` and
//! `EncryptResponse`, and a misspelt exception name does not compile.

use std::fmt::Write as _;

use anyhow::{bail, Result};

use crate::emit::{header, lit};
use crate::model::{Kind, Model, Shape};
use crate::names::snake;
use crate::source::{Service, COMMON_ERRORS};

/// One error of the service: a model shape or a common protocol error.
struct ErrorInfo {
    name: String,
    variant: String,
    server: bool,
    status: u16,
    modeled: bool,
}

/// `NotFoundException` -> `NotFound`; names without the suffix stay as they are.
fn exception_variant(name: &str) -> String {
    name.strip_suffix("Exception")
        .filter(|v| !v.is_empty())
        .unwrap_or(name)
        .to_owned()
}

fn errors(model: &Model) -> Result<Vec<ErrorInfo>> {
    let mut out: Vec<ErrorInfo> = Vec::new();
    for e in model.shapes.values().filter(|sh| sh.is_exception()) {
        let Shape {
            kind:
                Kind::Structure {
                    server_fault,
                    http_status,
                    ..
                },
            ..
        } = e
        else {
            bail!("exception `{}` is not a structure", e.name);
        };
        let default_status = if *server_fault { 500 } else { 400 };
        out.push(ErrorInfo {
            name: e.name.clone(),
            variant: exception_variant(&e.name),
            server: *server_fault,
            status: http_status.unwrap_or(default_status),
            modeled: true,
        });
    }
    for (name, server, status) in COMMON_ERRORS {
        if !out.iter().any(|e| e.name == *name) {
            out.push(ErrorInfo {
                name: (*name).to_owned(),
                variant: exception_variant(name),
                server: *server,
                status: *status,
                modeled: false,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, e) in out.iter().enumerate() {
        if out[..i].iter().any(|o| o.variant == e.variant) {
            bail!("exception variant `{}` generated twice", e.variant);
        }
    }
    Ok(out)
}

/// The `Exception` enum and its tables, appended to `exceptions.rs`.
pub fn gen_exception_enum(model: &Model, svc: &Service) -> Result<String> {
    let label = svc.label;
    let errs = errors(model)?;
    let mut s = String::new();
    writeln!(
        s,
        "/// Every error the {label} service answers ({}): the model's exception shapes and the\n\
         /// errors common to awsJson services that no model declares (`SerializationException`,\n\
         /// authentication failures, ...). The variant is the shape name without `Exception`;\n\
         /// [`Exception::name`] is what goes into `__type`.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n\
         #[allow(clippy::enum_variant_names)]\npub enum Exception {{",
        errs.len()
    )?;
    for e in &errs {
        let fault = if e.server { "server" } else { "client" };
        let origin = if e.modeled { "modeled" } else { "common" };
        writeln!(
            s,
            "/// `{}` ({fault} fault, HTTP {}, {origin}).\n{},",
            e.name, e.status, e.variant
        )?;
    }
    s.push_str("}\n\nimpl Exception {\n");
    s.push_str("/// Every error, sorted by name.\npub const ALL: &'static [Exception] = &[");
    for e in &errs {
        write!(s, "Exception::{},", e.variant)?;
    }
    s.push_str("];\n\n");
    let mut table = |doc: &str, sig: &str, value: &dyn Fn(&ErrorInfo) -> String| {
        let _ = writeln!(s, "/// {doc}\npub const fn {sig} {{\nmatch self {{");
        for e in &errs {
            let _ = writeln!(s, "Exception::{} => {},", e.variant, value(e));
        }
        s.push_str("}\n}\n\n");
    };
    table(
        "The shape name, sent as `__type` and `x-amzn-ErrorType`.",
        "name(self) -> &'static str",
        &|e| lit(&e.name),
    );
    table(
        "Client or server fault, as the model declares it.",
        "fault(self) -> Fault",
        &|e| format!("Fault::{}", if e.server { "Server" } else { "Client" }),
    );
    table(
        "The HTTP status the model implies (its `httpStatusCode`, else 400 for client and 500\n\
         /// for server faults; for common errors, what AWS's JSON endpoints send).",
        "model_status(self) -> u16",
        &|e| e.status.to_string(),
    );
    table(
        "Whether the service model declares this error (false for the common ones).",
        "is_modeled(self) -> bool",
        &|e| e.modeled.to_string(),
    );
    s.push_str(
        "/// The error named `name` exactly.\npub fn from_name(name: &str) -> Option<Exception> {\n\
         Exception::ALL.iter().copied().find(|e| e.name() == name)\n}\n}\n\n\
         impl std::fmt::Display for Exception {\n\
         fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n\
         f.write_str(self.name())\n}\n}\n\n",
    );
    Ok(s)
}

/// The per-operation error lists, typed (`impl Operation { fn errors }`).
pub fn gen_operation_errors(model: &Model) -> Result<String> {
    let mut s = String::from(
        "impl Operation {\n\
         /// The exceptions the model declares for this operation, in model order.\n\
         pub fn errors(self) -> &'static [Exception] {\nmatch self {\n",
    );
    for op in &model.operations {
        write!(s, "Operation::{} => &[", op.name)?;
        for e in &op.errors {
            write!(s, "Exception::{},", exception_variant(e))?;
        }
        s.push_str("],\n");
    }
    s.push_str("}\n}\n}\n");
    Ok(s)
}

/// `service.rs`: the service trait and its dispatch.
pub fn gen_service(model: &Model, svc: &Service) -> Result<String> {
    let (label, tr) = (svc.label, svc.service_trait);
    let (unsupported, names_op) = svc.unsupported;
    let unsupported = exception_variant(unsupported);
    let mut s = header();
    writeln!(
        s,
        "//! The {label} service contract: [`{tr}`] has one method per operation of the model,\n\
         //! typed request in, typed response out, each answering `{}` until it is implemented;\n\
         //! [`dispatch`] runs one request (parse, validate against the model, decode, call,\n\
         //! serialise). Implementing an operation is implementing its method.\n",
        svc.unsupported.0
    )?;
    let no_output = if model.operations.iter().any(|o| o.output.is_none()) {
        " NoOutput,"
    } else {
        ""
    };
    writeln!(
        s,
        "use std::future::Future;\n\n\
         use keyhold_model_runtime::dispatch::{{decode_input, DispatchError,{no_output} OutputWriter}};\n\
         use crate::{{Exception, Operation}};\n"
    )?;
    let unsupported_msg = if names_op {
        "format!(\"Keyhold does not implement the {} operation yet.\", operation.name())"
    } else {
        "{ let _ = operation; String::new() }"
    };
    writeln!(
        s,
        "/// The message of the `{}` that an operation without an implementation answers.\n\
         pub fn unsupported_message(operation: Operation) -> String {{\n{unsupported_msg}\n}}\n",
        svc.unsupported.0
    )?;
    writeln!(
        s,
        "/// The {label} API as Keyhold's domain implements it. `Context` is whatever identifies\n\
         /// the caller (account, Region); `Error` is the domain's error, built for the defaults by\n\
         /// [`{tr}::exception`].\n\
         pub trait {tr}: Sync {{\n\
         /// Who is calling; handed unchanged to every method.\n\
         type Context: Sync;\n\
         /// The failure of an operation.\n\
         type Error: Send;\n\n\
         /// The error `exception` with `message` (used by the default methods).\n\
         fn exception(exception: Exception, message: String) -> Self::Error;\n"
    )?;
    for op in &model.operations {
        let method = snake(&op.name);
        let output = match &op.output {
            Some(o) => format!("crate::shapes::{o}"),
            None => "()".to_owned(),
        };
        writeln!(
            s,
            "/// `{name}`.\n\
             fn {method}(&self, ctx: &Self::Context, input: crate::shapes::{input})\n\
             -> impl Future<Output = Result<{output}, Self::Error>> + Send {{\n\
             let _ = (ctx, input);\n\
             async {{ Err(Self::exception(Exception::{unsupported}, unsupported_message(Operation::{name}))) }}\n\
             }}\n",
            name = op.name,
            input = op.input,
        )?;
    }
    s.push_str("}\n\n");
    writeln!(
        s,
        "/// Runs one request of `operation` on `service`: the body is parsed (empty means `{{}}`),\n\
         /// validated against the model and decoded into the operation's input shape\n\
         /// ([`decode_input`]), handed to the operation's method, and its output serialised by\n\
         /// `out`.\n\
         pub async fn dispatch<S: {tr}, W: OutputWriter>(\n\
         service: &S,\n\
         ctx: &S::Context,\n\
         operation: Operation,\n\
         body: &[u8],\n\
         out: &W,\n\
         ) -> Result<W::Body, DispatchError<S::Error, W::Error>> {{\n\
         let name = operation.name();\n\
         let shape = operation.input_descriptor();\n\
         match operation {{"
    )?;
    for op in &model.operations {
        let method = snake(&op.name);
        let (bind, write) = if op.output.is_some() {
            ("let output = ", "out.write(&output)")
        } else {
            ("", "out.write(&NoOutput {})")
        };
        writeln!(
            s,
            "Operation::{} => {{\n\
             let input = decode_input(name, shape, body)?;\n\
             {bind}service.{method}(ctx, input).await.map_err(DispatchError::Service)?;\n\
             {write}.map_err(DispatchError::Output)\n}}",
            op.name
        )?;
    }
    s.push_str("}\n}\n");
    Ok(s)
}
