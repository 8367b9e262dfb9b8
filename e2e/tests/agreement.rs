//! `kthena-router validate -f`, the admission webhook's review and the router serving the same
//! files with `--manifests` give the same verdict on every example: each file of
//! examples/invalid/ (with examples/invalid/context/) is denied by the first two and refused by
//! the router (left out, or `Accepted=False` in its status), and every object of examples/ is
//! valid for all three.
//!
//! The verdicts agree because every rule on one object is in the one conversion
//! (`kthena_api::convert` and `kthena_core::validate`), which all three call.

use std::path::{Path, PathBuf};
use std::process::Command;

use kthena_api::ObjectKind;
use kthena_api::manifest::{self, Object};
use kthena_e2e::{Env, binary};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    manifest::files(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// `(status key of /debug/status, namespace, name)` of an object.
fn identity(o: &Object) -> Option<(&'static str, String, String)> {
    let kind = o
        .kind()
        .filter(|k| k.writes_status() && *k != ObjectKind::GatewayClass)?;
    let id = o.object_ref()?;
    Some((kind.plural(), id.namespace, id.name))
}

/// Every `Accepted=False` condition in a status stanza (its own conditions and its parents').
fn refusals(status: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut visit = |conditions: &serde_json::Value| {
        for c in conditions.as_array().into_iter().flatten() {
            if c["type"] == "Accepted" && c["status"] == "False" {
                out.push(format!("{}: {}", c["reason"], c["message"]));
            }
        }
    };
    visit(&status["conditions"]);
    for p in status["parents"].as_array().into_iter().flatten() {
        visit(&p["conditions"]);
    }
    out
}

/// The router's verdict on `(key, namespace, name)`: `Err(why)` when it refuses it.
fn router_verdict(
    status: &serde_json::Value,
    key: &str,
    ns: &str,
    name: &str,
) -> Result<(), String> {
    let entry = status[key].as_array().and_then(|os| {
        os.iter()
            .find(|o| o["name"] == name && o["namespace"] == ns)
    });
    match entry {
        None => Err(format!("no status for {key} {ns}/{name}")),
        Some(o) => match refusals(&o["status"]) {
            r if r.is_empty() => Ok(()),
            r => Err(r.join("; ")),
        },
    }
}

/// `validate FLAGS -f` over `paths`: the lines naming an object of `file`.
fn validate_lines(flags: &[&str], paths: &[&Path], file: &Path) -> Vec<String> {
    let mut cmd = Command::new(binary("kthena-router"));
    cmd.arg("validate").args(flags);
    for p in paths {
        cmd.arg("-f").arg(p);
    }
    let out = cmd.output().expect("validate runs");
    let prefix = format!("{}: ", file.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// The webhook's options of a router started with [`ROUTER_FLAGS`].
const GATEWAY: kthena_webhook::Options = kthena_webhook::Options {
    allow_duplicate_model_names: false,
    gateway_mode: true,
};

const ROUTER_FLAGS: &[&str] = &[
    "--enable-gateway-api",
    "--enable-gateway-api-inference-extension",
];

#[actix_rt::test]
async fn validate_the_webhook_and_the_router_agree_on_every_invalid_example() {
    let dir = examples().join("invalid");
    let context_dir = dir.join("context");
    let context_files = yaml_files(&context_dir);
    let context: kthena_webhook::Objects = manifest::load(&context_dir)
        .expect("context reads")
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    let mut disagreements = Vec::new();
    let files = yaml_files(&dir);
    assert!(files.len() >= 30, "{} invalid examples", files.len());
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        let text = std::fs::read_to_string(file).expect("readable");
        let objects = manifest::parse_str(&text, name).expect("each invalid example reads");
        let object = &objects[0];
        // 1. validate -f context file
        let validate = validate_lines(&["--enable-gateway-api"], &[&context_dir, file], file);
        // 2. the webhook's review against the same context
        let webhook = kthena_webhook::review(object, None, &context, GATEWAY);
        // 3. the router serving context + file
        let env = Env::new();
        for c in &context_files {
            let cname = c.file_name().and_then(|n| n.to_str()).expect("utf-8 name");
            env.write(
                &format!("context-{cname}"),
                &std::fs::read_to_string(c).expect("readable"),
            );
        }
        env.write(name, &text);
        let router = env.router(ROUTER_FLAGS);
        let status = router.debug("/debug/status").await.json();
        let (key, ns, obj_name) = identity(object).expect("a kind with status");
        let served = router_verdict(&status, key, &ns, &obj_name);
        let verdicts = (!validate.is_empty(), webhook.is_err(), served.is_err());
        if verdicts != (true, true, true) {
            disagreements.push((
                name.to_owned(),
                format!(
                    "validate denies: {}, webhook denies: {}, router refuses: {} ({served:?})",
                    verdicts.0, verdicts.1, verdicts.2
                ),
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[actix_rt::test]
async fn validate_the_webhook_and_the_router_accept_every_example() {
    let dir = examples();
    let objects = manifest::load(&dir).expect("examples read");
    let others: kthena_webhook::Objects = objects.iter().map(|(_, o)| o.clone()).collect();
    let env = Env::new();
    for f in yaml_files(&dir) {
        let name = f.file_name().and_then(|n| n.to_str()).expect("utf-8 name");
        env.write(name, &std::fs::read_to_string(&f).expect("readable"));
    }
    let router = env.router(ROUTER_FLAGS);
    let status = router.debug("/debug/status").await.json();
    let mut wrong = Vec::new();
    for (file, object) in &objects {
        let validate = validate_lines(&["--enable-gateway-api"], &[&dir], file);
        let webhook = kthena_webhook::review(object, None, &others, GATEWAY);
        let served = match identity(object) {
            Some((key, ns, name)) => router_verdict(&status, key, &ns, &name),
            None => Ok(()),
        };
        if !validate.is_empty() || webhook.is_err() || served.is_err() {
            wrong.push(format!(
                "{}: validate {validate:?}, webhook {webhook:?}, router {served:?}",
                file.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Outside gateway mode every route without parentRefs is matched whatever its namespace, so a
/// second route claiming the same model name in another namespace would be shadowed: all
/// three deny it. Started in gateway mode, the same two routes serve different listeners and
/// all three admit the second.
#[actix_rt::test]
async fn outside_gateway_mode_all_three_deny_a_model_name_claimed_in_another_namespace() {
    let route = |ns: &str, name: &str| {
        format!(
            "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
             metadata: {{name: {name}, namespace: {ns}}}\nspec:\n  modelName: shared-model\n  \
             rules:\n  - targetModels:\n    - modelServerName: s\n"
        )
    };
    let env = Env::new();
    env.write("older.yaml", &route("alpha", "first"));
    env.write("newer.yaml", &route("beta", "second"));
    let file = env.dir.join("newer.yaml");
    let newer = manifest::parse_str(&route("beta", "second"), "newer.yaml").expect("reads");
    let context: kthena_webhook::Objects = manifest::parse_str(&route("alpha", "first"), "older")
        .expect("reads")
        .into_iter()
        .collect();

    let validate = validate_lines(&[], &[&env.dir], &file);
    let webhook = kthena_webhook::review(&newer[0], None, &context, Default::default());
    let router = env.router(&[]);
    let status = router.debug("/debug/status").await.json();
    let served = router_verdict(&status, "modelroutes", "beta", "second");
    assert!(
        validate
            .iter()
            .any(|l| l.contains("\"shared-model\" is already served by ModelRoute alpha/first")),
        "validate: {validate:?}"
    );
    let denial = webhook.expect_err("the webhook denies").to_string();
    assert!(denial.contains("alpha/first"), "{denial}");
    let refusal = served.expect_err("the router refuses the newer route");
    assert!(refusal.contains("Conflicted"), "{refusal}");
    assert_eq!(
        router_verdict(&status, "modelroutes", "alpha", "first"),
        Ok(()),
        "the older route serves"
    );

    let mut cmd = Command::new(binary("kthena-router"));
    cmd.args(["validate", "--enable-gateway-api", "-f"])
        .arg(&env.dir);
    let out = cmd.output().expect("validate runs");
    assert!(
        out.status.success(),
        "gateway mode admits both: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    kthena_webhook::review(&newer[0], None, &context, GATEWAY).expect("gateway mode admits it");
}
