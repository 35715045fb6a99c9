//! `cargo xtask check-deps`: the crate-graph rules of the workspace, checked against
//! `cargo metadata`.
//!
//! The layering (a KMS domain that knows no HTTP, SQL or PKCS#11; an XKS proxy that does not
//! drag the KMS domain along; generated model crates that stay plain data) is easy to break
//! with one innocent `Cargo.toml` line and hard to notice in review, because the damage is
//! usually transitive. So the rules live here as data, each with its reason, and
//! `scripts/test` runs them.
//!
//! Only non-dev edges count (normal and build dependencies, on every target platform): tests
//! may use anything. Features are as `cargo metadata` resolves them for the whole workspace
//! with default features, which can only add edges, so a passing check is never optimistic.

use std::collections::{HashMap, VecDeque};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// What one crate must not depend on, directly or transitively, and why.
#[derive(Debug)]
pub struct Rule {
    /// The workspace crate the rule is about.
    pub krate: &'static str,
    /// Forbidden package names: exact, or a prefix ending in `*` (`keyhold-*`). The crate
    /// itself never matches its own rule.
    pub forbidden: &'static [&'static str],
    /// Exact names allowed even though a `forbidden` pattern matches them.
    pub except: &'static [&'static str],
    /// Why the rule exists, printed with every violation.
    pub why: &'static str,
}

/// The rules `cargo xtask check-deps` enforces.
pub const RULES: &[Rule] = &[
    Rule {
        krate: "keyhold-core",
        forbidden: &[
            "hyper",
            "http",
            "sqlx",
            "cryptoki",
            "rustls",
            "tokio-rustls",
            "keyhold-store",
            "keyhold-xks",
            "keyhold-server",
            "keyhold-pkcs11",
            "keyhold-cloudhsm",
        ],
        except: &[],
        why: "keyhold-core is the KMS domain: it talks to backends only through its ports, so it \
              must not know HTTP, TLS, SQL or PKCS#11, nor the adapter crates that implement \
              those ports (which depend on core, so this would also be a cycle in spirit)",
    },
    Rule {
        krate: "keyhold-xks-proxy",
        forbidden: &["keyhold-core"],
        except: &[],
        why: "the XKS proxy is a separate product edge that only speaks the XKS Proxy API; it \
              shares the wire types through keyhold-xks-wire, not the whole KMS domain",
    },
    Rule {
        krate: "keyhold-kms-model",
        forbidden: &["keyhold-*", "tokio", "hyper", "sqlx"],
        except: &["keyhold-model-runtime"],
        why: "generated KMS wire vocabulary: plain data plus the model runtime, so it compiles \
              fast and any front end or client can use it without an async runtime or server",
    },
    Rule {
        krate: "keyhold-cloudhsm-model",
        forbidden: &["keyhold-*", "tokio", "hyper", "sqlx"],
        except: &["keyhold-model-runtime"],
        why: "generated CloudHSM v2 wire vocabulary: plain data plus the model runtime, like \
              keyhold-kms-model",
    },
    Rule {
        krate: "keyhold-model-runtime",
        forbidden: &["keyhold-*", "tokio", "hyper", "sqlx"],
        except: &[],
        why: "the support code of the generated model crates sits at the bottom of the graph; \
              anything it pulls in, every model user pays for",
    },
    Rule {
        krate: "keyhold-policy",
        forbidden: &["keyhold-*", "tokio", "hyper", "sqlx"],
        except: &[],
        why: "IAM policy evaluation is pure functions over data, used by the KMS domain on \
              every request: no I/O, no async runtime, and no other Keyhold crate, so the \
              domain can depend on it without a cycle and it stays fast to build and test",
    },
    Rule {
        krate: "keyhold-sigv4",
        forbidden: &["keyhold-*"],
        except: &[],
        why: "SigV4 is pure functions used by the server, the XKS client and the XKS proxy \
              alike; depending on any of them would tie the others together",
    },
];

/// The resolved package graph: one node per package id, with its dependency edges.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    name: String,
    /// `(index of the dependency, whether any of its edges is a normal or build edge)`.
    deps: Vec<(usize, bool)>,
}

/// A rule broken: which package was reached and through which path.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    /// The crate the rule is about.
    pub krate: &'static str,
    /// The forbidden package reached.
    pub forbidden: String,
    /// Package names from `krate` to `forbidden`, inclusive (a shortest path).
    pub path: Vec<String>,
    /// The rule's reason.
    pub why: &'static str,
}

impl Graph {
    /// Adds a package and returns its index (for building graphs by hand).
    pub fn add(&mut self, name: &str) -> usize {
        self.nodes.push(Node {
            name: name.to_string(),
            deps: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// Adds an edge; `non_dev` is false for an edge that is only a dev-dependency.
    pub fn depend(&mut self, from: usize, to: usize, non_dev: bool) {
        if let Some(node) = self.nodes.get_mut(from) {
            node.deps.push((to, non_dev));
        }
    }

    /// Reads the `packages` and `resolve` sections of `cargo metadata --format-version 1`.
    pub fn from_metadata(meta: &Value) -> Result<Graph> {
        let packages = meta
            .get("packages")
            .and_then(Value::as_array)
            .context("cargo metadata: no `packages` array")?;
        let mut graph = Graph::default();
        let mut index = HashMap::new();
        for p in packages {
            let id = p.get("id").and_then(Value::as_str);
            let name = p.get("name").and_then(Value::as_str);
            let (Some(id), Some(name)) = (id, name) else {
                bail!("cargo metadata: a package without `id` or `name`");
            };
            index.insert(id.to_string(), graph.add(name));
        }
        let nodes = meta
            .get("resolve")
            .and_then(|r| r.get("nodes"))
            .and_then(Value::as_array)
            .context("cargo metadata: no `resolve.nodes` (was --no-deps passed?)")?;
        for n in nodes {
            let from = node_index(&index, n.get("id"))?;
            let deps = n.get("deps").and_then(Value::as_array);
            for d in deps.into_iter().flatten() {
                let to = node_index(&index, d.get("pkg"))?;
                let kinds = d
                    .get("dep_kinds")
                    .and_then(Value::as_array)
                    .context("cargo metadata: a dependency without `dep_kinds` (cargo too old?)")?;
                // `kind` is null for normal dependencies, "build" or "dev" otherwise.
                let non_dev = kinds
                    .iter()
                    .any(|k| k.get("kind").and_then(Value::as_str) != Some("dev"));
                graph.depend(from, to, non_dev);
            }
        }
        Ok(graph)
    }

    /// Checks every rule; a rule about a crate that is not in the graph is an error, so a
    /// renamed crate cannot make its rule pass silently.
    pub fn check(&self, rules: &[Rule]) -> Result<Vec<Violation>> {
        let mut out = Vec::new();
        for rule in rules {
            let Some(root) = self.nodes.iter().position(|n| n.name == rule.krate) else {
                bail!("check-deps: rule for unknown crate {:?}", rule.krate);
            };
            out.extend(self.check_one(rule, root));
        }
        Ok(out)
    }

    /// Breadth-first over non-dev edges from `root`, so each reported path is a shortest one.
    fn check_one(&self, rule: &Rule, root: usize) -> Vec<Violation> {
        let mut parent: Vec<Option<usize>> = vec![None; self.nodes.len()];
        let mut seen = vec![false; self.nodes.len()];
        let mut queue = VecDeque::from([root]);
        let mut found = Vec::new();
        seen[root] = true;
        while let Some(at) = queue.pop_front() {
            if at != root && is_forbidden(rule, &self.nodes[at].name) {
                found.push(Violation {
                    krate: rule.krate,
                    forbidden: self.nodes[at].name.clone(),
                    path: self.path_to(&parent, at),
                    why: rule.why,
                });
            }
            for &(to, non_dev) in &self.nodes[at].deps {
                if non_dev && to < seen.len() && !seen[to] {
                    seen[to] = true;
                    parent[to] = Some(at);
                    queue.push_back(to);
                }
            }
        }
        found
    }

    fn path_to(&self, parent: &[Option<usize>], mut at: usize) -> Vec<String> {
        let mut path = vec![self.nodes[at].name.clone()];
        while let Some(p) = parent[at] {
            path.push(self.nodes[p].name.clone());
            at = p;
        }
        path.reverse();
        path
    }
}

fn node_index(index: &HashMap<String, usize>, id: Option<&Value>) -> Result<usize> {
    let id = id
        .and_then(Value::as_str)
        .context("cargo metadata: a resolve entry without an id")?;
    index
        .get(id)
        .copied()
        .with_context(|| format!("cargo metadata: unknown package id {id}"))
}

fn is_forbidden(rule: &Rule, name: &str) -> bool {
    if rule.except.contains(&name) {
        return false;
    }
    rule.forbidden
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *pattern,
        })
}

/// Runs `cargo metadata` on the workspace and checks [`RULES`]; `Ok(false)` means at least
/// one violation was printed.
pub fn check_deps() -> Result<bool> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(crate::workspace_root())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    let violations = Graph::from_metadata(&meta)?.check(RULES)?;
    for v in &violations {
        eprintln!(
            "check-deps: {} must not depend on {}: {}\n  why: {}",
            v.krate,
            v.forbidden,
            v.path.join(" -> "),
            v.why
        );
    }
    if violations.is_empty() {
        println!("check-deps: {} crate-graph rules hold", RULES.len());
    }
    Ok(violations.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE_RULE: Rule = Rule {
        krate: "core",
        forbidden: &["hyper", "keyhold-*"],
        except: &["keyhold-ok"],
        why: "test",
    };

    #[test]
    fn a_transitive_violation_is_reported_with_its_path() {
        let mut g = Graph::default();
        let core = g.add("core");
        let a = g.add("a");
        let b = g.add("b");
        let hyper = g.add("hyper");
        g.depend(core, a, true);
        g.depend(a, b, true);
        g.depend(b, hyper, true);
        let v = g.check(&[CORE_RULE]).expect("core exists");
        assert_eq!(
            v,
            vec![Violation {
                krate: "core",
                forbidden: "hyper".to_string(),
                path: vec!["core".into(), "a".into(), "b".into(), "hyper".into()],
                why: "test",
            }]
        );
    }

    #[test]
    fn dev_edges_are_ignored_even_when_they_lead_further() {
        let mut g = Graph::default();
        let core = g.add("core");
        let testkit = g.add("testkit");
        let hyper = g.add("hyper");
        g.depend(core, testkit, false);
        g.depend(testkit, hyper, true);
        assert_eq!(g.check(&[CORE_RULE]).expect("core exists"), vec![]);
    }

    #[test]
    fn prefixes_exceptions_and_the_crate_itself() {
        let mut g = Graph::default();
        let core = g.add("keyhold-core");
        let ok = g.add("keyhold-ok");
        let bad = g.add("keyhold-bad");
        let http = g.add("http");
        g.depend(core, ok, true);
        g.depend(ok, core, true);
        g.depend(ok, bad, true);
        g.depend(core, http, true);
        let rule = Rule {
            krate: "keyhold-core",
            ..CORE_RULE
        };
        let v = g.check(&[rule]).expect("exists");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].forbidden, "keyhold-bad");
        assert_eq!(v[0].path, ["keyhold-core", "keyhold-ok", "keyhold-bad"]);
    }

    #[test]
    fn a_rule_for_a_missing_crate_is_an_error() {
        let mut g = Graph::default();
        g.add("other");
        assert!(g.check(&[CORE_RULE]).is_err());
    }

    #[test]
    fn metadata_build_edges_count_and_dev_only_edges_do_not() {
        let meta = serde_json::json!({
            "packages": [
                {"id": "core 0.1", "name": "core"},
                {"id": "cc 1", "name": "hyper"},
                {"id": "t 1", "name": "keyhold-testkit"},
            ],
            "resolve": {"nodes": [
                {"id": "core 0.1", "deps": [
                    {"pkg": "cc 1", "dep_kinds": [{"kind": "build", "target": null}]},
                    {"pkg": "t 1", "dep_kinds": [{"kind": "dev", "target": null}]},
                ]},
                {"id": "cc 1", "deps": []},
                {"id": "t 1", "deps": []},
            ]},
        });
        let g = Graph::from_metadata(&meta).expect("well-formed");
        let v = g.check(&[CORE_RULE]).expect("core exists");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, ["core", "hyper"]);
        let bad = serde_json::json!({"packages": [], "resolve": {"nodes": [{"id": "x"}]}});
        assert!(Graph::from_metadata(&bad).is_err());
    }

    #[test]
    fn every_rule_says_why_and_names_something() {
        for rule in RULES {
            assert!(!rule.why.trim().is_empty(), "{}", rule.krate);
            assert!(!rule.forbidden.is_empty(), "{}", rule.krate);
        }
    }

    /// The real workspace: fails here first if a change breaks the layering.
    #[test]
    fn the_workspace_follows_the_rules() {
        assert!(check_deps().expect("cargo metadata runs"));
    }
}
