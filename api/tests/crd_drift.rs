//! crds/ holds exactly what the Rust types generate. Fix a failure with
//! `cargo run -p kthena-api --bin crdgen`.

#[test]
fn crds_folder_matches_the_rust_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let drift = kthena_api::crds::sync(&dir, true).expect("crds/ readable");
    assert!(
        drift.is_empty(),
        "crds/ is out of date: {drift:?}; run `cargo run -p kthena-api --bin crdgen`"
    );
}

#[test]
fn our_crds_have_short_names_status_and_printer_columns() {
    let cases = [
        ("modelroutes", "mr", vec!["Model", "Accepted", "Age"]),
        ("modelservers", "ms", vec!["Engine", "Port", "Ready", "Age"]),
        (
            "externalmodelproviders",
            "emp",
            vec!["Provider", "URL", "Ready", "Age"],
        ),
    ];
    let crds = kthena_api::crds::all();
    for (plural, short, columns) in cases {
        let (_, crd) = crds
            .iter()
            .find(|(_, c)| c.spec.names.plural == plural)
            .expect(plural);
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&[short.to_owned()][..])
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert_eq!(
            (v.name.as_str(), v.served, v.storage),
            ("v1alpha1", true, true)
        );
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{plural}: status subresource"
        );
        let names: Vec<&str> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, columns, "{plural}");
    }
}
