//! Keeps the AWS template (`infra/template.yaml`) and the code from drifting apart: the
//! functions it deploys are the workspace's Lambda binaries and the other way round, the
//! routes API Gateway sends to each function are the ones that function's router serves,
//! the tables and queues have the shapes the adapters create and expect, and the
//! environment the functions get is a complete, valid configuration of the AWS backend.
//!
//! Nothing here deploys or talks to AWS: the template is read as YAML, the workspace
//! through `cargo metadata`, the routers are asked in process, and the table adapters
//! send their `CreateTable` requests to a stand-in endpoint on 127.0.0.1.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use parley_shared::aws::{DynamoEventStore, DynamoViewStore, config_loader};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::config::{BackendConfig, Config, LogFormat};
use parley_shared::embedded::Embedded;
use regex::Regex;
use serde::Deserialize;
use serde_norway::{Mapping, Value as Yaml};
use tower::ServiceExt;

// ---------------------------------------------------------------------------------
// The template

const TEMPLATE: &str = "infra/template.yaml";
const FUNCTION_TYPE: &str = "AWS::Serverless::Function";

/// The workspace root: this crate lives in `<root>/tests`.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn template() -> Yaml {
    let path = root().join(TEMPLATE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    // CloudFormation's short forms (!Ref, !GetAtt, !Sub…) come through as Yaml::Tagged.
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{TEMPLATE} is not YAML: {e}"))
}

fn resources(template: &Yaml) -> &Mapping {
    template
        .get("Resources")
        .and_then(Yaml::as_mapping)
        .unwrap_or_else(|| panic!("{TEMPLATE} has no Resources mapping"))
}

/// The value at `path` under `value`, if every step is a mapping key.
fn at<'a>(value: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

fn str_at<'a>(value: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Yaml::as_str)
}

/// Every `AWS::Serverless::Function` resource: (logical id, resource).
fn functions(template: &Yaml) -> Vec<(String, &Yaml)> {
    let functions: Vec<_> = resources(template)
        .iter()
        .filter(|(_, resource)| str_at(resource, &["Type"]) == Some(FUNCTION_TYPE))
        .map(|(id, resource)| (id.as_str().unwrap_or("?").to_owned(), resource))
        .collect();
    assert!(
        !functions.is_empty(),
        "{TEMPLATE} declares no {FUNCTION_TYPE}: is the test reading the right file?"
    );
    functions
}

/// The directory a function's `CodeUri` (relative to infra/) names, canonicalised.
fn code_dir(function: &Yaml) -> Result<PathBuf, String> {
    let uri = str_at(function, &["Properties", "CodeUri"])
        .ok_or_else(|| "has no Properties.CodeUri string".to_owned())?;
    let dir = root().join("infra").join(uri);
    dir.canonicalize()
        .map_err(|e| format!("CodeUri {uri} ({}) does not exist: {e}", dir.display()))
}

/// The logical id of the function whose `CodeUri` is `<root>/<relative>`.
fn function_deployed_from(template: &Yaml, relative: &str) -> String {
    let want = root().join(relative).canonicalize().unwrap();
    let found: Vec<String> = functions(template)
        .into_iter()
        .filter(|(_, f)| code_dir(f).is_ok_and(|dir| dir == want))
        .map(|(id, _)| id)
        .collect();
    match found.as_slice() {
        [one] => one.clone(),
        _ => panic!("{TEMPLATE} should deploy {relative} as exactly one function, found {found:?}"),
    }
}

/// The resource a `!Ref Name` names, or `None` for anything else.
fn ref_target(value: &Yaml) -> Option<&str> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        _ => None,
    }
}

/// `Globals.Function.Environment.Variables`, which every function gets.
fn global_variables(template: &Yaml) -> &Mapping {
    at(
        template,
        &["Globals", "Function", "Environment", "Variables"],
    )
    .and_then(Yaml::as_mapping)
    .unwrap_or_else(|| panic!("{TEMPLATE} has no Globals.Function.Environment.Variables"))
}

/// The logical id of the resource that the global variable `name` is a `!Ref` of.
fn global_ref(template: &Yaml, name: &str) -> String {
    let value = global_variables(template)
        .get(name)
        .unwrap_or_else(|| panic!("Globals.Function.Environment.Variables has no {name}"));
    ref_target(value)
        .unwrap_or_else(|| panic!("{name} should be a !Ref of a resource, is {value:?}"))
        .to_owned()
}

fn resource<'a>(template: &'a Yaml, id: &str) -> &'a Yaml {
    resources(template)
        .get(id)
        .unwrap_or_else(|| panic!("{TEMPLATE} has no resource {id}"))
}

// ---------------------------------------------------------------------------------
// The workspace, from `cargo metadata`

struct Package {
    name: String,
    dir: PathBuf,
    bins: BTreeSet<String>,
    /// Normal (not dev or build) dependencies, by package name.
    dependencies: BTreeSet<String>,
}

fn workspace() -> Vec<Package> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?} metadata: {e}"));
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(|id| id.as_str())
        .collect();
    let packages: Vec<Package> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest_path"));
            let dir = manifest.parent().unwrap().canonicalize().unwrap();
            let bins = p["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.contains(&"bin".into()))
                })
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect();
            let dependencies = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str().map(str::to_owned))
                .collect();
            Package {
                name: p["name"].as_str().expect("name").to_owned(),
                dir,
                bins,
                dependencies,
            }
        })
        .collect();
    assert!(
        !packages.is_empty(),
        "cargo metadata listed no workspace member"
    );
    packages
}

// ---------------------------------------------------------------------------------
// 1 and 2: functions and binaries

#[test]
fn every_template_function_is_a_binary_of_the_workspace() {
    let template = template();
    let workspace = workspace();
    let mut problems = Vec::new();
    for (id, function) in functions(&template) {
        let method = str_at(function, &["Metadata", "BuildMethod"]);
        if method != Some("rust-cargolambda") {
            problems.push(format!(
                "{id}: Metadata.BuildMethod is {method:?}, not rust-cargolambda"
            ));
        }
        let Some(binary) = str_at(function, &["Metadata", "BuildProperties", "Binary"]) else {
            problems.push(format!("{id}: has no Metadata.BuildProperties.Binary"));
            continue;
        };
        let dir = match code_dir(function) {
            Ok(dir) => dir,
            Err(e) => {
                problems.push(format!("{id}: {e}"));
                continue;
            }
        };
        match workspace.iter().find(|p| p.dir == dir) {
            None => problems.push(format!(
                "{id}: CodeUri {} is not the directory of a workspace member",
                dir.display()
            )),
            Some(package) if !package.bins.contains(binary) => problems.push(format!(
                "{id}: package {} ({}) has no [[bin]] named {binary:?}; its bins are {:?}",
                package.name,
                dir.display(),
                package.bins
            )),
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "functions in {TEMPLATE} that the workspace does not build:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_lambda_binary_of_the_workspace_is_in_the_template() {
    let template = template();
    let deployed: BTreeSet<&str> = functions(&template)
        .into_iter()
        .filter_map(|(_, f)| str_at(f, &["Metadata", "BuildProperties", "Binary"]))
        .collect();
    let functions_dir = root().join("functions").canonicalize().unwrap();
    let lambdas: Vec<(String, String)> = workspace()
        .into_iter()
        .filter(|p| p.dir.starts_with(&functions_dir))
        // The local stack runs every function in one process; it is not deployed.
        .filter(|p| p.name != "parley")
        .filter(|p| {
            p.dependencies.contains("lambda_runtime") || p.dependencies.contains("lambda_http")
        })
        .flat_map(|p| p.bins.into_iter().map(move |bin| (p.name.clone(), bin)))
        .collect();
    assert!(
        lambdas.iter().any(|(_, bin)| bin == "api"),
        "found no Lambda binary under functions/ (not even api): the scan is broken; found {lambdas:?}"
    );
    let missing: Vec<String> = lambdas
        .iter()
        .filter(|(_, bin)| !deployed.contains(bin.as_str()))
        .map(|(package, bin)| format!("{bin} (package {package})"))
        .collect();
    assert!(
        missing.is_empty(),
        "Lambda binaries under functions/ that no {FUNCTION_TYPE} in {TEMPLATE} deploys \
         (no Metadata.BuildProperties.Binary names them):\n  {}",
        missing.join("\n  ")
    );
}

/// CI's `cargo lambda build --release` (`.ci/infra`) builds exactly the template's
/// functions, so every deployment package the template needs is proven to build.
#[test]
fn ci_builds_every_function_the_template_deploys() {
    let template = template();
    let deployed: BTreeSet<String> = functions(&template)
        .into_iter()
        .filter_map(|(_, f)| str_at(f, &["Metadata", "BuildProperties", "Binary"]))
        .map(str::to_owned)
        .collect();
    let script = std::fs::read_to_string(root().join(".ci/infra")).unwrap();
    let list = Regex::new(r"(?m)^functions=\(([^)]*)\)").unwrap();
    let built: BTreeSet<String> = list
        .captures(&script)
        .map(|c| c[1].split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    assert_eq!(
        built, deployed,
        ".ci/infra's functions=(...) list and the template's functions differ"
    );
}

// ---------------------------------------------------------------------------------
// 3: routes

/// A route: (method, path template such as `/v1/tenants/{id}`).
type Route = (String, String);

/// The path literals of the `.route(` calls in a crate's router source.
fn scanned_paths(relative: &str) -> BTreeSet<String> {
    let path = root().join(relative);
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    // The first string literal after `.route(`, which rustfmt may put on the next line.
    let route = Regex::new(r#"\.route\(\s*"([^"]*)""#).unwrap();
    let paths: BTreeSet<String> = route
        .captures_iter(&source)
        .map(|c| c[1].to_owned())
        .collect();
    assert!(
        !paths.is_empty(),
        "found no .route(\"…\") in {relative}: has the router moved?"
    );
    paths
}

/// `path` with each `{param}` filled with a value of the kind it takes.
fn concrete(path: &str) -> String {
    let param = Regex::new(r"\{([^}]*)\}").unwrap();
    param
        .replace_all(path, |c: &regex::Captures| match &c[1] {
            "number" => "+12025550123".to_owned(),
            "name" => "deepgram".to_owned(),
            _ => "0190a3d4-7b1c-7c3e-9f00-00000000002a".to_owned(),
        })
        .into_owned()
}

/// The methods `router` serves at `path` (HEAD aside): axum answers a method a route
/// lacks with 405 and an `Allow` header listing the ones it has.
async fn served_methods(router: &axum::Router, path: &str) -> Result<BTreeSet<String>, String> {
    let uri = concrete(path);
    // No route serves TRACE, so every routed path answers 405.
    let request = Request::builder()
        .method(Method::TRACE)
        .uri(&uri)
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return Err(format!(
            "TRACE {uri} answered {} instead of 405: the router does not serve {path}",
            response.status()
        ));
    }
    let allow = response
        .headers()
        .get(header::ALLOW)
        .ok_or_else(|| format!("TRACE {uri}: 405 without an Allow header"))?
        .to_str()
        .map_err(|e| format!("TRACE {uri}: Allow header is not text: {e}"))?;
    // axum adds HEAD to every GET; API Gateway does not route HEAD to a GET route and
    // nothing calls HEAD, so it is not compared.
    Ok(allow
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && *m != "HEAD")
        .map(str::to_owned)
        .collect())
}

/// Every route the api and webhooks routers serve, with the logical id of the function
/// the template deploys that crate as.
async fn code_routes(template: &Yaml) -> BTreeMap<Route, String> {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_lookup(|_| None).unwrap();
    let embedded = Embedded::open(
        dir.path(),
        Arc::new(SystemClock),
        config.public_url.clone(),
        config.queue_max_receives,
    )
    .unwrap();
    let ports = Ports::embedded(embedded);
    let api = parley_api::router(parley_api::AppState::new(ports.clone(), &config).unwrap());
    let webhooks = parley_webhooks::router(
        parley_webhooks::WebhookState::new(ports, &config, true)
            .await
            .unwrap(),
    );

    let mut routes = BTreeMap::new();
    let mut problems = Vec::new();
    for (crate_dir, router) in [("functions/api", api), ("functions/webhooks", webhooks)] {
        let function = function_deployed_from(template, crate_dir);
        for path in scanned_paths(&format!("{crate_dir}/src/lib.rs")) {
            match served_methods(&router, &path).await {
                Ok(methods) if methods.is_empty() => {
                    problems.push(format!("{crate_dir}: {path} allows no method but HEAD"))
                }
                Ok(methods) => {
                    for method in methods {
                        routes.insert((method, path.clone()), function.clone());
                    }
                }
                Err(e) => problems.push(format!("{crate_dir}: {e}")),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the routers do not serve what their source declares:\n  {}",
        problems.join("\n  ")
    );
    routes
}

/// Every `HttpApi` event in the template: route → (function, event name), in order.
fn template_routes(template: &Yaml) -> BTreeMap<Route, Vec<(String, String)>> {
    let mut routes: BTreeMap<Route, Vec<(String, String)>> = BTreeMap::new();
    for (id, function) in functions(template) {
        let Some(events) = at(function, &["Properties", "Events"]).and_then(Yaml::as_mapping)
        else {
            continue;
        };
        for (name, event) in events {
            if str_at(event, &["Type"]) != Some("HttpApi") {
                continue;
            }
            let name = name.as_str().unwrap_or("?").to_owned();
            let (Some(method), Some(path)) = (
                str_at(event, &["Properties", "Method"]),
                str_at(event, &["Properties", "Path"]),
            ) else {
                panic!("{id}.Events.{name} is an HttpApi event without Method and Path");
            };
            routes
                .entry((method.to_ascii_uppercase(), path.to_owned()))
                .or_default()
                .push((id.clone(), name));
        }
    }
    assert!(!routes.is_empty(), "{TEMPLATE} declares no HttpApi event");
    routes
}

fn route_name((method, path): &Route) -> String {
    format!("{method} {path}")
}

#[tokio::test]
async fn the_template_routes_exactly_what_the_routers_serve() {
    let template = template();
    let code = code_routes(&template).await;
    let declared = template_routes(&template);

    let missing: Vec<String> = code
        .iter()
        .filter(|(route, _)| !declared.contains_key(*route))
        .map(|(route, function)| format!("{} (served by {function}'s router)", route_name(route)))
        .collect();
    let extra: Vec<String> = declared
        .iter()
        .filter(|(route, _)| !code.contains_key(*route))
        .map(|(route, events)| format!("{} (events {events:?})", route_name(route)))
        .collect();
    let twice: Vec<String> = declared
        .iter()
        .filter(|(_, events)| events.len() > 1)
        .map(|(route, events)| format!("{} (events {events:?})", route_name(route)))
        .collect();
    let mut report = String::new();
    if !missing.is_empty() {
        report += &format!(
            "\nserved by a router but not routed by {TEMPLATE} (API Gateway answers 404):\n  {}",
            missing.join("\n  ")
        );
    }
    if !extra.is_empty() {
        report += &format!(
            "\nrouted by {TEMPLATE} but served by no router (the function answers 404/405):\n  {}",
            extra.join("\n  ")
        );
    }
    if !twice.is_empty() {
        report += &format!(
            "\nrouted more than once by {TEMPLATE}:\n  {}",
            twice.join("\n  ")
        );
    }
    assert!(report.is_empty(), "routes differ:{report}");
}

#[tokio::test]
async fn each_template_route_goes_to_the_function_whose_router_serves_it() {
    let template = template();
    let code = code_routes(&template).await;
    let wrong: Vec<String> = template_routes(&template)
        .iter()
        .flat_map(|(route, events)| {
            let serving = code.get(route);
            events.iter().filter_map(move |(function, event)| {
                let serving = serving?;
                (function != serving).then(|| {
                    format!(
                        "{} is event {event} of {function}, but {serving}'s router serves it",
                        route_name(route)
                    )
                })
            })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "routes sent to the wrong function:\n  {}",
        wrong.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------
// 4: tables, queues and the environment

/// The part of a DynamoDB table's definition the adapters depend on. CloudFormation's
/// `AWS::DynamoDB::Table` properties and DynamoDB's `CreateTable` request spell these
/// the same way, so one type reads both.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableShape {
    billing_mode: Option<String>,
    #[serde(default)]
    attribute_definitions: Vec<AttributeDefinition>,
    #[serde(default)]
    key_schema: Vec<KeyElement>,
    #[serde(default)]
    global_secondary_indexes: Vec<SecondaryIndex>,
    stream_specification: Option<StreamSpecification>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeDefinition {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyElement {
    attribute_name: String,
    key_type: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecondaryIndex {
    index_name: String,
    key_schema: Vec<KeyElement>,
    projection: Projection,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Projection {
    projection_type: String,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamSpecification {
    stream_view_type: Option<String>,
}

impl TableShape {
    /// The order of attribute definitions and of indexes means nothing to DynamoDB; the
    /// order of a key schema does (HASH first), so it is kept.
    fn normalised(mut self) -> TableShape {
        self.attribute_definitions.sort();
        self.global_secondary_indexes.sort();
        self
    }

    /// Each part of the shape, named as in the template, as text.
    fn parts(&self) -> [(&'static str, String); 5] {
        fn keys(schema: &[KeyElement]) -> String {
            let keys: Vec<String> = schema
                .iter()
                .map(|k| format!("{} {}", k.attribute_name, k.key_type))
                .collect();
            keys.join(", ")
        }
        let attributes: Vec<String> = self
            .attribute_definitions
            .iter()
            .map(|a| format!("{} {}", a.attribute_name, a.attribute_type))
            .collect();
        let indexes: Vec<String> = self
            .global_secondary_indexes
            .iter()
            .map(|i| {
                let projection = &i.projection.projection_type;
                format!("{} ({}; {projection})", i.index_name, keys(&i.key_schema))
            })
            .collect();
        let stream = self
            .stream_specification
            .as_ref()
            .map(|s| format!("StreamViewType {:?}", s.stream_view_type));
        [
            ("BillingMode", format!("{:?}", self.billing_mode)),
            ("AttributeDefinitions", attributes.join(", ")),
            ("KeySchema", keys(&self.key_schema)),
            ("GlobalSecondaryIndexes", indexes.join(", ")),
            ("StreamSpecification", format!("{stream:?}")),
        ]
    }

    /// Each part in which `self` (the template's) and `adapter` differ, one a line.
    fn differences(&self, adapter: &TableShape) -> Vec<String> {
        self.parts()
            .into_iter()
            .zip(adapter.parts())
            .filter(|((_, declared), (_, created))| declared != created)
            .map(|((name, declared), (_, created))| {
                format!("{name}: template [{declared}], adapter [{created}]")
            })
            .collect()
    }
}

/// A stand-in DynamoDB endpoint that records each `CreateTable` request and says every
/// table is active, so the adapters' `create_table` runs to the end.
async fn fake_dynamodb() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let created = Arc::new(Mutex::new(Vec::new()));
    let recorder = created.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let recorder = recorder.clone();
            async move {
                let target = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let answer = match target.as_str() {
                    "DynamoDB_20120810.CreateTable" => {
                        recorder.lock().unwrap().push(request);
                        serde_json::json!({})
                    }
                    "DynamoDB_20120810.DescribeTable" => serde_json::json!({
                        "Table": {"TableName": request["TableName"], "TableStatus": "ACTIVE"}
                    }),
                    other => panic!("the fake DynamoDB was sent {other:?}"),
                };
                (
                    [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
                    answer.to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, created)
}

#[tokio::test]
async fn the_tables_have_the_shapes_the_adapters_create() {
    let template = template();
    let (url, created) = fake_dynamodb().await;
    let sdk = config_loader()
        .endpoint_url(&url)
        .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "fake",
        ))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);

    // The table shapes are private to the adapters (shared/src/aws/dynamo_events.rs and
    // dynamo_views.rs); their public `create_table` sends exactly that shape, so it is
    // what the template is compared with.
    DynamoEventStore::create_table(&client, "events")
        .await
        .unwrap();
    DynamoViewStore::create_table(&client, "views")
        .await
        .unwrap();
    let requests = created.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        2,
        "expected one CreateTable per adapter: {requests:?}"
    );

    let mut problems = Vec::new();
    for (variable, request) in [
        ("PARLEY_EVENTS_TABLE", &requests[0]),
        ("PARLEY_VIEWS_TABLE", &requests[1]),
    ] {
        let id = global_ref(&template, variable);
        let table = resource(&template, &id);
        assert_eq!(
            str_at(table, &["Type"]),
            Some("AWS::DynamoDB::Table"),
            "{variable} is a !Ref of {id}, which is not a table"
        );
        let properties =
            at(table, &["Properties"]).unwrap_or_else(|| panic!("{id}: no Properties"));
        let declared: TableShape = serde_norway::from_value(properties.clone())
            .unwrap_or_else(|e| panic!("{id}'s Properties do not read as a table: {e}"));
        let adapter: TableShape = serde_json::from_value(request.clone())
            .unwrap_or_else(|e| panic!("CreateTable request does not read as a table: {e}"));
        let (declared, adapter) = (declared.normalised(), adapter.normalised());
        if declared != adapter {
            let differences = declared.differences(&adapter);
            problems.push(format!(
                "{id} (the table {variable} names):\n    {}",
                differences.join("\n    ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "tables in {TEMPLATE} differ from what the adapters create:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn each_queue_dead_letters_to_the_queue_its_dead_letter_variable_names() {
    let template = template();
    // The embedded queue moves a job to its dead-letter queue after this many deliveries;
    // the AWS queues should give a job the same number of tries, so the local stack
    // behaves like production.
    let max_receives = Config::from_lookup(|_| None).unwrap().queue_max_receives;
    let mut problems = Vec::new();
    // What `SqsQueue::create` makes (a literal expectation: the adapter builds it inline):
    // a queue whose RedrivePolicy sends a message to the dead-letter queue after
    // max_receives deliveries.
    for (queue_var, dead_var) in [
        ("PARLEY_DIAL_QUEUE_URL", "PARLEY_DIAL_DEAD_LETTER_URL"),
        ("PARLEY_MESSAGE_QUEUE_URL", "PARLEY_MESSAGE_DEAD_LETTER_URL"),
    ] {
        let (queue, dead) = (
            global_ref(&template, queue_var),
            global_ref(&template, dead_var),
        );
        for id in [&queue, &dead] {
            let kind = str_at(resource(&template, id), &["Type"]);
            if kind != Some("AWS::SQS::Queue") {
                problems.push(format!("{id} is a {kind:?}, not an AWS::SQS::Queue"));
            }
        }
        let queue_resource = resource(&template, &queue);
        let target = at(
            queue_resource,
            &["Properties", "RedrivePolicy", "deadLetterTargetArn"],
        );
        let expected_arn = format!("{dead}.Arn");
        match target {
            Some(Yaml::Tagged(t))
                if t.tag == "GetAtt" && t.value.as_str() == Some(&expected_arn) => {}
            other => problems.push(format!(
                "{queue} ({queue_var}) should dead-letter to !GetAtt {expected_arn} \
                 ({dead_var}), its RedrivePolicy.deadLetterTargetArn is {other:?}"
            )),
        }
        let receives = at(
            queue_resource,
            &["Properties", "RedrivePolicy", "maxReceiveCount"],
        )
        .and_then(Yaml::as_u64);
        if receives != Some(u64::from(max_receives)) {
            problems.push(format!(
                "{queue}: RedrivePolicy.maxReceiveCount is {receives:?}, the embedded queue's is {max_receives}"
            ));
        }
        if at(resource(&template, &dead), &["Properties", "RedrivePolicy"]).is_some() {
            problems.push(format!(
                "{dead} is a dead-letter queue but redrives elsewhere"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "queues in {TEMPLATE} differ from what the adapters expect:\n  {}",
        problems.join("\n  ")
    );
}

// Placeholders for what CloudFormation fills in at deploy time.
const STACK: &str = "parley-prod";
const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

/// What `!Ref name` gives for the template's parameters, pseudo parameters and resources
/// (a plausible value of the kind CloudFormation returns for each resource type).
fn ref_value(template: &Yaml, name: &str) -> Result<String, String> {
    let value = match name {
        "AWS::StackName" => STACK.to_owned(),
        "AWS::Region" => REGION.to_owned(),
        "AWS::AccountId" => ACCOUNT.to_owned(),
        "AWS::Partition" => "aws".to_owned(),
        "ApiDomainName" => "api.example.com".to_owned(),
        "MediaDomainName" => "media.example.com".to_owned(),
        _ => {
            let resource = resources(template)
                .get(name)
                .ok_or_else(|| format!("no placeholder for !Ref {name}"))?;
            match str_at(resource, &["Type"]) {
                Some("AWS::DynamoDB::Table") => format!("{STACK}-{name}-1A2B3C4D5E6F"),
                Some("AWS::SQS::Queue") => {
                    format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-{name}")
                }
                Some("AWS::S3::Bucket") => format!("{STACK}-{}-1a2b3c", name.to_lowercase()),
                Some("AWS::SecretsManager::Secret") => {
                    format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf")
                }
                other => return Err(format!("no placeholder for !Ref {name} of type {other:?}")),
            }
        }
    };
    Ok(value)
}

/// A plausible deployed value of an environment variable's template value.
fn deployed_value(template: &Yaml, value: &Yaml) -> Result<String, String> {
    match value {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Tagged(t) if t.tag == "Ref" => {
            ref_value(template, t.value.as_str().ok_or("!Ref of a non-string")?)
        }
        Yaml::Tagged(t) if t.tag == "Sub" => {
            let text = t.value.as_str().ok_or("!Sub of a non-string")?;
            let mut out = String::new();
            let mut last = 0;
            for c in Regex::new(r"\$\{([^}]*)\}").unwrap().captures_iter(text) {
                let whole = c.get(0).unwrap();
                out.push_str(&text[last..whole.start()]);
                out.push_str(&ref_value(template, &c[1])?);
                last = whole.end();
            }
            out.push_str(&text[last..]);
            Ok(out)
        }
        other => Err(format!("no placeholder for {other:?}")),
    }
}

/// The ids the Secrets Manager secret `resource` can be read by: its ARN (what `!Ref`
/// gives) and, when the template names it, its name.
fn secret_ids(template: &Yaml, resource_id: &str) -> BTreeSet<String> {
    let secret = resource(template, resource_id);
    assert_eq!(
        str_at(secret, &["Type"]),
        Some("AWS::SecretsManager::Secret"),
        "{resource_id} is not a Secrets Manager secret"
    );
    let mut ids = BTreeSet::from([ref_value(template, resource_id).unwrap()]);
    if let Some(name) = at(secret, &["Properties", "Name"]) {
        ids.insert(
            deployed_value(template, name)
                .unwrap_or_else(|e| panic!("{resource_id}.Properties.Name: {e}")),
        );
    }
    ids
}

#[test]
fn the_functions_environment_is_a_valid_aws_configuration() {
    let template = template();
    let api = function_deployed_from(&template, "functions/api");
    let webhooks = function_deployed_from(&template, "functions/webhooks");
    let stream_secret = secret_ids(&template, "StreamTokenSecret");
    let admin_secret = secret_ids(&template, "AdminKeySecret");
    let queue = |name: &str| format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-{name}");
    let mut problems = Vec::new();
    for (id, function) in functions(&template) {
        // The function's own variables add to (and override) the global ones.
        let own =
            at(function, &["Properties", "Environment", "Variables"]).and_then(Yaml::as_mapping);
        let mut variables = BTreeMap::new();
        for (name, value) in global_variables(&template)
            .iter()
            .chain(own.into_iter().flatten())
        {
            let name = name
                .as_str()
                .expect("variable names are strings")
                .to_owned();
            let value =
                deployed_value(&template, value).unwrap_or_else(|e| panic!("{id}: {name}: {e}"));
            variables.insert(name, value);
        }

        let asked = RefCell::new(BTreeSet::new());
        let config = Config::from_lookup(|name| {
            asked.borrow_mut().insert(name.to_owned());
            variables.get(name).cloned()
        });
        let config = match config {
            Ok(config) => config,
            Err(e) => {
                problems.push(format!("{id}: its environment is refused: {e}"));
                continue;
            }
        };
        let asked = asked.into_inner();
        for name in variables.keys().filter(|n| n.starts_with("PARLEY_")) {
            if !asked.contains(name) {
                problems.push(format!(
                    "{id}: sets {name}, which Config::from_lookup does not read (a typo?)"
                ));
            }
        }

        // What each variable must point at: the template's own tables, queues, bucket
        // and secrets, not merely any valid value.
        let BackendConfig::Aws {
            stream_secret_id,
            admin_key_secret_id,
            ..
        } = config.backend.clone()
        else {
            problems.push(format!("{id}: backend is {:?}, not aws", config.backend));
            continue;
        };
        let expected = BackendConfig::Aws {
            events_table: format!("{STACK}-EventsTable-1A2B3C4D5E6F"),
            views_table: format!("{STACK}-ViewsTable-1A2B3C4D5E6F"),
            dial_queue_url: queue("DialQueue"),
            dial_dead_letter_url: queue("DialDeadLetterQueue"),
            message_queue_url: queue("MessageQueue"),
            message_dead_letter_url: queue("MessageDeadLetterQueue"),
            bucket: format!("{STACK}-bucket-1a2b3c"),
            secrets_prefix: format!("/parley/{STACK}/"),
            // Checked below: a secret may be named by its name or its ARN.
            stream_secret_id: stream_secret_id.clone(),
            admin_key_secret_id: admin_key_secret_id.clone(),
        };
        if config.backend != expected {
            problems.push(format!(
                "{id}: backend\n    is       {:?}\n    expected {expected:?}",
                config.backend
            ));
        }
        // A platform secret, where set, must be the template's; the webhooks mint stream
        // tokens and the API reads the admin key at start, so those two must have theirs.
        for (variable, value, secret, ids, needed_by) in [
            (
                "PARLEY_STREAM_SECRET_ID",
                &stream_secret_id,
                "StreamTokenSecret",
                &stream_secret,
                &webhooks,
            ),
            (
                "PARLEY_ADMIN_KEY_SECRET_ID",
                &admin_key_secret_id,
                "AdminKeySecret",
                &admin_secret,
                &api,
            ),
        ] {
            match value {
                Some(value) if !ids.contains(value) => problems.push(format!(
                    "{id}: {variable} is {value:?}, not {secret} (one of {ids:?})"
                )),
                None if id == *needed_by => {
                    problems.push(format!("{id}: needs {variable} ({secret}), which is unset"))
                }
                _ => {}
            }
        }
        if config.public_url != "https://api.example.com" {
            problems.push(format!("{id}: public URL is {}", config.public_url));
        }
        if config.media_url != "wss://media.example.com" {
            problems.push(format!("{id}: media URL is {}", config.media_url));
        }
        if config.log_format != LogFormat::Json {
            problems.push(format!(
                "{id}: logs are {:?}, CloudWatch wants JSON",
                config.log_format
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the environment {TEMPLATE} gives the functions is not the AWS configuration the \
         code needs:\n  {}",
        problems.join("\n  ")
    );
}
