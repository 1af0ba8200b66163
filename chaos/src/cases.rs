//! Tables of cases, and the one driver that runs them. A case is a name, a request as raw as
//! a client can make it, and the answer it must get; [`run`] sends a table's requests, counts
//! the answers by status and code, and holds each to its case.

use futures::StreamExt;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use testkit::{Answer, Api, Raw, Reply};

use crate::scenarios::Tally;

/// One request and the answer it must get.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub request: Raw,
    pub expect: Expect,
}

/// The answer a case must get.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The contract's error, with one of `codes`, whose `details` hold at least the fields of
    /// `details` (an empty object: any details of the code). `route_level`: the router's own
    /// `NOT_FOUND` and `METHOD_NOT_ALLOWED`, outside the contract's table, are allowed too.
    Error {
        codes: Vec<&'static str>,
        details: Value,
        route_level: bool,
    },
    /// A success with `status` whose body holds `body`: the fields of an object, anything else
    /// exactly.
    Success { status: u16, body: Value },
}

impl Expect {
    /// The contract's error `code`, with any details.
    pub fn error(code: &'static str) -> Self {
        Self::Error {
            codes: vec![code],
            details: Value::Object(Default::default()),
            route_level: false,
        }
    }

    /// What the answer may be, for a listing of the cases.
    pub fn describe(&self) -> String {
        match self {
            Self::Error { codes, .. } => format!("{codes:?}"),
            Self::Success { status, .. } => status.to_string(),
        }
    }

    /// What is wrong with `reply`, if anything.
    pub fn check(&self, reply: &Reply) -> Result<(), String> {
        match self {
            Self::Error {
                codes,
                details,
                route_level,
            } => {
                let extra: &[&str] = if *route_level {
                    &["NOT_FOUND", "METHOD_NOT_ALLOWED"]
                } else {
                    &[]
                };
                reply.contract_error(extra)?;
                if !codes.contains(&reply.code()) {
                    return Err(format!(
                        "{} {} where {codes:?} was expected: {}",
                        reply.status,
                        reply.code(),
                        reply.text.chars().take(200).collect::<String>()
                    ));
                }
                holds(details, &reply.body["details"])
                    .map_err(|e| format!("details.{e}, got details {}", reply.body["details"]))
            }
            Self::Success { status, body } => {
                if reply.status != *status {
                    return Err(format!(
                        "expected {status}, got {} {}",
                        reply.status,
                        reply.short()
                    ));
                }
                holds(body, &reply.body).map_err(|e| format!("{e}: {}", reply.short()))
            }
        }
    }
}

/// Whether `got` holds `expected`: every field of an object, anything else equal.
fn holds(expected: &Value, got: &Value) -> Result<(), String> {
    let Some(fields) = expected.as_object() else {
        return if expected == got {
            Ok(())
        } else {
            Err(format!("should be {expected}"))
        };
    };
    let wrong: Vec<String> = fields
        .iter()
        .filter(|(k, v)| got.get(k.as_str()) != Some(v))
        .map(|(k, v)| format!("{k} should be {v}"))
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join(", "))
    }
}

/// How a table is run.
#[derive(Debug, Clone, Copy)]
pub struct Driver {
    /// Requests in flight at once (1: one after the other, in the table's order).
    pub parallel: usize,
    /// A server may close the connection on a body it will not read, and the answer it sent
    /// first is then lost on the way: ask once more on a fresh connection.
    pub ask_again_when_unanswered: bool,
}

impl Driver {
    /// One request after the other, each asked once.
    pub const IN_ORDER: Driver = Driver {
        parallel: 1,
        ask_again_when_unanswered: false,
    };
}

/// What a table's answers were.
#[derive(Debug, Default)]
pub struct Answers {
    pub tally: Tally,
    /// Cases run.
    pub tried: usize,
    /// Answers with a status of 500 or more.
    pub server_errors: usize,
    /// Every case not answered as it must be: `case N (name): what is wrong`.
    pub failures: Vec<String>,
}

impl Answers {
    /// Adds another table's answers to these.
    pub fn merge(&mut self, other: Answers) {
        for (k, v) in other.tally.0 {
            *self.tally.0.entry(k).or_default() += v;
        }
        self.tried += other.tried;
        self.server_errors += other.server_errors;
        self.failures.extend(other.failures);
    }
}

/// Runs the table `cases` against `api` as `driver` says, and checks every answer.
pub async fn run(api: &Api, cases: Vec<Case>, driver: Driver) -> Answers {
    let mut answers = Answers::default();
    let mut replies = futures::stream::iter(cases.into_iter().enumerate())
        .map(|(n, case)| async move {
            let reply = ask(api, &case.request, driver).await;
            (n, case, reply)
        })
        .buffered(driver.parallel.max(1));
    while let Some((n, case, reply)) = replies.next().await {
        answers.tally.add(&reply);
        answers.tried += 1;
        let problem = match &reply {
            Err(e) => Err(format!("no answer: {e}")),
            Ok(r) => {
                if r.status >= 500 {
                    answers.server_errors += 1;
                }
                case.expect.check(r)
            }
        };
        if let Err(p) = problem {
            answers
                .failures
                .push(format!("case {n} ({}): {p}", case.name));
        }
    }
    answers
}

async fn ask(api: &Api, request: &Raw, driver: Driver) -> Answer {
    let reply = api.raw(request).await;
    if reply.is_err() && driver.ask_again_when_unanswered {
        let mut again = request.clone();
        again.headers.push((
            HeaderName::from_static("connection"),
            HeaderValue::from_static("close"),
        ));
        return api.raw(&again).await;
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(code: &str, details: Value) -> Reply {
        let status = if code == "INSUFFICIENT_STOCK" {
            409
        } else {
            400
        };
        Reply::json(
            status,
            json!({"code": code, "message": "m", "details": details}),
        )
    }

    #[test]
    fn an_error_case_wants_its_code_and_details() {
        let expect = Expect::Error {
            codes: vec!["INSUFFICIENT_STOCK"],
            details: json!({"product_id": 3}),
            route_level: false,
        };
        let right = error(
            "INSUFFICIENT_STOCK",
            json!({"product_id": 3, "available": 0}),
        );
        assert!(expect.check(&right).is_ok());
        let other = error(
            "INSUFFICIENT_STOCK",
            json!({"product_id": 4, "available": 0}),
        );
        assert!(expect.check(&other).is_err());
        assert!(expect.check(&error("INVALID_REQUEST", json!({}))).is_err());
        assert!(
            Expect::error("INVALID_REQUEST")
                .check(&Reply::json(200, json!({})))
                .is_err()
        );
    }

    #[test]
    fn a_success_case_wants_its_status_and_fields() {
        let expect = Expect::Success {
            status: 200,
            body: json!({"status": "PENDING"}),
        };
        assert!(
            expect
                .check(&Reply::json(200, json!({"id": "o", "status": "PENDING"})))
                .is_ok()
        );
        assert!(
            expect
                .check(&Reply::json(200, json!({"status": "CANCELED"})))
                .is_err()
        );
        assert!(
            expect
                .check(&Reply::json(201, json!({"status": "PENDING"})))
                .is_err()
        );
        let empty = Expect::Success {
            status: 200,
            body: json!([]),
        };
        assert!(empty.check(&Reply::json(200, json!([]))).is_ok());
        assert!(empty.check(&Reply::json(200, json!([1]))).is_err());
    }
}
