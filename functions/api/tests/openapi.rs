//! `GET /openapi.json`: the hand-written OpenAPI document is served without a key, and
//! it describes exactly the routes `router()` registers, read from `src/lib.rs` itself,
//! so that a route added or removed without the document fails here.

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::Api;
use serde_json::Value;
use tower::ServiceExt;

/// The router's source, whose `.route(...)` calls the document must match.
const ROUTER_SOURCE: &str = include_str!("../src/lib.rs");

/// The methods axum's `MethodRouter` offers, as OpenAPI names them.
const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

/// Calls in a route's method router that add no method.
const NOT_METHODS: [&str; 3] = ["layer", "route_layer", "with_state"];

async fn document(api: &Api) -> Value {
    let (status, body) = api.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn the_document_is_served_without_a_key() {
    let api = Api::new();
    let response = api
        .app
        .clone()
        .oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json",
        "content type"
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let doc: Value = serde_json::from_slice(&bytes).expect("the document is JSON");
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "openapi is {version:?}");
    assert!(doc["info"]["title"].is_string());
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_exists() {
    let api = Api::new();
    let doc = document(&api).await;
    let routes = routes(ROUTER_SOURCE);
    // A parser that finds nothing would make the checks below pass vacuously.
    assert!(routes.len() >= 30, "only {} routes read", routes.len());
    assert!(routes.contains(&("/openapi.json".into(), "get".into())));
    assert!(routes.contains(&("/v1/campaigns/{id}/leads".into(), "post".into())));
    assert!(routes.contains(&("/v1/campaigns/{id}/leads".into(), "get".into())));

    let documented = operations(&doc);
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(missing.is_empty(), "routes the document lacks: {missing:?}");
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    let paths: BTreeSet<&str> = routes.iter().map(|(p, _)| p.as_str()).collect();
    for path in doc["paths"].as_object().unwrap().keys() {
        assert!(paths.contains(path.as_str()), "{path} is not a route");
    }
}

#[tokio::test]
async fn every_reference_resolves_to_a_component() {
    let api = Api::new();
    let doc = document(&api).await;
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 50, "only {} $refs found", refs.len());
    for reference in refs {
        let pointer = reference
            .strip_prefix('#')
            .filter(|p| p.starts_with("/components/"))
            .unwrap_or_else(|| panic!("{reference} is not a local component"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{reference} resolves to nothing"
        );
    }
}

#[tokio::test]
async fn operations_are_complete_and_keyed_unless_public() {
    let api = Api::new();
    let doc = document(&api).await;
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let at = format!("{method} {path}");
            assert!(op["summary"].is_string(), "{at}: no summary");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|code| code.starts_with('2')),
                "{at}: no success response"
            );
            let public = path == "/health" || path == "/openapi.json";
            if public {
                assert_eq!(op["security"], serde_json::json!([]), "{at} needs no key");
            } else {
                assert!(op.get("security").is_none(), "{at} overrides security");
                assert!(responses.contains_key("401"), "{at}: no 401");
            }
            // Every `{name}` in the path is a declared path parameter.
            let declared = path_parameters(&doc, item, op);
            for name in template_names(path) {
                assert!(declared.contains(&name), "{at}: {{{name}}} not declared");
            }
        }
    }
}

/// The `(path, method)` pairs of every `.route("<path>", <methods>)` in the body of
/// `fn router` in `source`.
fn routes(source: &str) -> BTreeSet<(String, String)> {
    let code = strip_comments(source);
    let start = code.find("fn router(").expect("fn router in src/lib.rs");
    let body = start + code[start..].find('{').expect("fn router's body") + 1;
    let len = closing(&code[body..]).expect("fn router's closing brace");
    let mut found = BTreeSet::new();
    let mut rest = &code[body..body + len];
    while let Some(at) = rest.find(".route(") {
        let args_start = at + ".route(".len();
        let len = closing(&rest[args_start..])
            .unwrap_or_else(|| panic!("unclosed .route( near {:?}", &rest[at..]));
        let args = &rest[args_start..args_start + len];
        let (path, methods) = split_route(args);
        for method in method_calls(methods) {
            found.insert((path.clone(), method));
        }
        rest = &rest[args_start + len..];
    }
    found
}

/// `source` without its `//` comments (string literals kept whole).
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut end = line.len();
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if in_string => escaped = true,
                b'"' => in_string = !in_string,
                b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&line[..end]);
        out.push('\n');
    }
    out
}

/// The length of `text` up to the bracket that closes one already open before it.
fn closing(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ if in_string => {}
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return Some(i),
            ')' | ']' | '}' => depth = depth.checked_sub(1)?,
            _ => {}
        }
    }
    None
}

/// A route's arguments as its path (a string literal) and its method router.
fn split_route(args: &str) -> (String, &str) {
    let args = args.trim_start();
    let literal = args
        .strip_prefix('"')
        .unwrap_or_else(|| panic!("a route's path is not a string literal: {args:?}"));
    let end = literal.find('"').expect("the path's closing quote");
    let rest = literal[end + 1..].trim_start();
    let methods = rest
        .strip_prefix(',')
        .unwrap_or_else(|| panic!("no method router after {:?}", &literal[..end]));
    (literal[..end].to_owned(), methods)
}

/// The HTTP methods a method router expression adds: `get(a).post(b).layer(..)` gives
/// `get` and `post`. Any other call at its top level fails the test, so that a route
/// written some new way is read rather than skipped.
fn method_calls(expr: &str) -> Vec<String> {
    let mut methods = Vec::new();
    let mut rest = expr;
    while let Some(open) = rest.find('(') {
        let name: String = rest[..open]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if METHODS.contains(&name.as_str()) {
            methods.push(name);
        } else if !NOT_METHODS.contains(&name.as_str()) {
            panic!("cannot read the method router {expr:?}: unknown call {name:?}");
        }
        let len = closing(&rest[open + 1..]).expect("a closed call");
        rest = &rest[open + 1 + len + 1..];
    }
    assert!(!methods.is_empty(), "no method in {expr:?}");
    methods
}

/// Every documented `(path, method)` pair.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS.contains(&method.as_str()) {
                found.insert((path.clone(), method.clone()));
            }
        }
    }
    found
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => refs.push(reference.clone()),
                    _ => collect_refs(value, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

/// The `{name}`s of a path template.
fn template_names(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

/// The names of the path parameters of an operation and its path item, references
/// followed.
fn path_parameters(doc: &Value, item: &Value, op: &Value) -> Vec<String> {
    [&item["parameters"], &op["parameters"]]
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .map(|p| match p["$ref"].as_str() {
            Some(reference) => doc.pointer(&reference[1..]).unwrap_or(&Value::Null),
            None => p,
        })
        .filter(|p| p["in"] == "path" && p["required"] == true)
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}
