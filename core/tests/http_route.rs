//! HTTPRoute matching, precedence, weights and filters, table-driven.

use std::time::Duration;

use kthena_core::http_route::{
    self as hr, DEFAULT_REDIRECT_STATUS, FullRegex, hostname_matches, rewrite_path,
};
use kthena_core::{
    BackendRef, BackendTarget, CreationOrder, Filter, HeaderModifier, HttpMatch, HttpRequest,
    HttpRoute, HttpRouteTable, HttpRule, ObjectRef, PathMatch, PathModifier, Redirect, Timeouts,
    ValueMatch,
};

/// A route `ns/name` created at `created` seconds.
fn route(
    ns: &str,
    name: &str,
    created: i64,
    hostnames: &[&str],
    rules: Vec<HttpRule>,
) -> HttpRoute {
    HttpRoute {
        id: ObjectRef::new(ns, name),
        order: CreationOrder {
            created_unix_nanos: Some(created * 1_000_000_000),
            namespace: ns.into(),
            name: name.into(),
        },
        hostnames: hostnames.iter().map(|h| (*h).to_owned()).collect(),
        rules,
    }
}

fn svc(name: &str, weight: u32) -> BackendRef {
    BackendRef {
        target: BackendTarget::Service {
            service: ObjectRef::new("default", name),
            port: 8000,
        },
        weight,
    }
}

fn rule(matches: Vec<HttpMatch>, backend: &str) -> HttpRule {
    HttpRule::new(
        None,
        matches,
        vec![],
        vec![svc(backend, 1)],
        Timeouts::default(),
    )
}

fn prefix(p: &str) -> HttpMatch {
    HttpMatch {
        path: PathMatch::Prefix(p.into()),
        ..HttpMatch::default()
    }
}

fn exact(p: &str) -> HttpMatch {
    HttpMatch {
        path: PathMatch::Exact(p.into()),
        ..HttpMatch::default()
    }
}

fn regex(p: &str) -> HttpMatch {
    HttpMatch {
        path: PathMatch::Regex(FullRegex::new(p).expect("test regex compiles")),
        ..HttpMatch::default()
    }
}

fn headers(mut m: HttpMatch, hs: &[(&str, &str)]) -> HttpMatch {
    m.headers = hs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), ValueMatch::Exact((*v).to_owned())))
        .collect();
    m
}

fn query(mut m: HttpMatch, qs: &[(&str, &str)]) -> HttpMatch {
    m.query = qs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), ValueMatch::Exact((*v).to_owned())))
        .collect();
    m
}

fn method(mut m: HttpMatch, method: &str) -> HttpMatch {
    m.method = Some(method.into());
    m
}

/// `route#rule.match->backend` of the selection, or `none`.
fn picked(table: &HttpRouteTable, req: &HttpRequest) -> String {
    match table.select(req) {
        None => "none".into(),
        Some(s) => {
            let backend = match s.backend.map(|b| &b.target) {
                Some(BackendTarget::Service { service, .. }) => service.name.clone(),
                Some(other) => format!("{other:?}"),
                None => "-".into(),
            };
            format!(
                "{}#{}.{}->{backend}",
                s.route.id, s.rule_index, s.match_index
            )
        }
    }
}

/// A request matching every condition used by the precedence rows.
fn full_request() -> HttpRequest {
    HttpRequest::get("/a/b/c?q1=1&q2=2")
        .header("h1", "1")
        .header("h2", "2")
        .header("Host", "example.com")
}

#[test]
fn precedence_follows_the_gateway_api_order() {
    // Each row: the expected winner is newer and alphabetically later than its rival and only
    // wins through the criterion named, so the row fails if that criterion were missing.
    let rich = |m: HttpMatch| {
        query(
            headers(method(m, "GET"), &[("h1", "1"), ("h2", "2")]),
            &[("q1", "1"), ("q2", "2")],
        )
    };
    let rows: Vec<(&str, Vec<HttpRoute>, &str)> = vec![
        (
            "exact path beats prefix",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &[],
                    vec![rule(vec![rich(prefix("/a/b/c"))], "old")],
                ),
                route(
                    "ns",
                    "z-new",
                    2,
                    &[],
                    vec![rule(vec![exact("/a/b/c")], "new")],
                ),
            ],
            "ns/z-new#0.0->new",
        ),
        (
            "longest prefix beats method, headers and query",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &[],
                    vec![rule(vec![rich(prefix("/a"))], "old")],
                ),
                route(
                    "ns",
                    "z-new",
                    2,
                    &[],
                    vec![rule(vec![prefix("/a/b/")], "new")],
                ),
            ],
            "ns/z-new#0.0->new",
        ),
        (
            "method beats headers and query",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &[],
                    vec![rule(
                        vec![query(
                            headers(prefix("/a"), &[("h1", "1"), ("h2", "2")]),
                            &[("q1", "1")],
                        )],
                        "old",
                    )],
                ),
                route(
                    "ns",
                    "z-new",
                    2,
                    &[],
                    vec![rule(vec![method(prefix("/a"), "GET")], "new")],
                ),
            ],
            "ns/z-new#0.0->new",
        ),
        (
            "more headers beat more query params",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &[],
                    vec![rule(
                        vec![query(
                            headers(prefix("/a"), &[("h1", "1")]),
                            &[("q1", "1"), ("q2", "2")],
                        )],
                        "old",
                    )],
                ),
                route(
                    "ns",
                    "z-new",
                    2,
                    &[],
                    vec![rule(
                        vec![headers(prefix("/a"), &[("h1", "1"), ("h2", "2")])],
                        "new",
                    )],
                ),
            ],
            "ns/z-new#0.0->new",
        ),
        (
            "more query params beat age",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &[],
                    vec![rule(vec![query(prefix("/a"), &[("q1", "1")])], "old")],
                ),
                route(
                    "ns",
                    "z-new",
                    2,
                    &[],
                    vec![rule(
                        vec![query(prefix("/a"), &[("q1", "1"), ("q2", "2")])],
                        "new",
                    )],
                ),
            ],
            "ns/z-new#0.0->new",
        ),
        (
            "oldest route beats name",
            vec![
                route("ns", "a-new", 2, &[], vec![rule(vec![prefix("/a")], "new")]),
                route("ns", "z-old", 1, &[], vec![rule(vec![prefix("/a")], "old")]),
            ],
            "ns/z-old#0.0->old",
        ),
        (
            "namespace/name breaks an age tie",
            vec![
                route("b-ns", "a", 1, &[], vec![rule(vec![prefix("/a")], "b")]),
                route("a-ns", "z", 1, &[], vec![rule(vec![prefix("/a")], "a")]),
            ],
            "a-ns/z#0.0->a",
        ),
        (
            "first rule, then first match, within a route",
            vec![route(
                "ns",
                "r",
                1,
                &[],
                vec![
                    rule(
                        vec![prefix("/x"), prefix("/a"), headers(prefix("/a"), &[])],
                        "first",
                    ),
                    rule(vec![prefix("/a")], "second"),
                ],
            )],
            "ns/r#0.1->first",
        ),
        (
            "duplicate header names count once",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &[],
                    vec![rule(
                        vec![headers(prefix("/a"), &[("h1", "1"), ("h2", "2")])],
                        "old",
                    )],
                ),
                route(
                    "ns",
                    "z-new",
                    2,
                    &[],
                    vec![rule(
                        vec![headers(
                            prefix("/a"),
                            &[("h1", "1"), ("H1", "x"), ("h1", "y")],
                        )],
                        "new",
                    )],
                ),
            ],
            "ns/a-old#0.0->old",
        ),
        (
            "regex paths rank after every prefix",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &[],
                    vec![rule(vec![rich(regex("/a/b/c"))], "old")],
                ),
                route("ns", "z-new", 2, &[], vec![rule(vec![prefix("/")], "new")]),
            ],
            "ns/z-new#0.0->new",
        ),
        (
            "among regexes the usual tie-breakers apply",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &[],
                    vec![rule(vec![regex("/a/.*")], "old")],
                ),
                route(
                    "ns",
                    "z-new",
                    2,
                    &[],
                    vec![rule(vec![method(regex("/a/.*"), "GET")], "new")],
                ),
            ],
            "ns/z-new#0.0->new",
        ),
        (
            "an exact hostname beats a better path on a wildcard hostname",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &["*.com"],
                    vec![rule(vec![exact("/a/b/c")], "old")],
                ),
                route(
                    "ns",
                    "z-new",
                    2,
                    &["example.com"],
                    vec![rule(vec![prefix("/")], "new")],
                ),
            ],
            "ns/z-new#0.0->new",
        ),
        (
            "a wildcard hostname beats no hostname",
            vec![
                route(
                    "ns",
                    "a-old",
                    1,
                    &[],
                    vec![rule(vec![exact("/a/b/c")], "old")],
                ),
                route(
                    "ns",
                    "z-new",
                    2,
                    &["*.com"],
                    vec![rule(vec![prefix("/")], "new")],
                ),
            ],
            "ns/z-new#0.0->new",
        ),
    ];
    for (name, routes, want) in rows {
        let table = HttpRouteTable::build(routes, None);
        assert_eq!(picked(&table, &full_request()), want, "{name}");
    }
}

#[test]
fn longer_wildcard_hostname_wins() {
    let table = HttpRouteTable::build(
        vec![
            route(
                "ns",
                "short",
                1,
                &["*.example.com"],
                vec![rule(vec![exact("/")], "short")],
            ),
            route(
                "ns",
                "long",
                2,
                &["*.api.example.com"],
                vec![rule(vec![prefix("/")], "long")],
            ),
        ],
        None,
    );
    let req = HttpRequest::get("/").header("host", "v1.api.example.com");
    assert_eq!(picked(&table, &req), "ns/long#0.0->long");
    let req = HttpRequest::get("/").header("host", "v1.web.example.com");
    assert_eq!(picked(&table, &req), "ns/short#0.0->short");
}

#[test]
fn prefix_matches_whole_segments() {
    let cases = [
        ("/foo", "/foo", true),
        ("/foo", "/foo/", true),
        ("/foo", "/foo/bar", true),
        ("/foo", "/foobar", false),
        ("/foo/", "/foo", true),
        ("/foo/", "/foo/bar", true),
        ("/foo/", "/foobar", false),
        ("/foo", "/fo", false),
        ("/", "/", true),
        ("/", "/anything/at/all", true),
    ];
    for (p, path, want) in cases {
        assert_eq!(
            PathMatch::Prefix(p.into()).matches(path),
            want,
            "{p} on {path}"
        );
    }
    assert!(PathMatch::Exact("/foo".into()).matches("/foo"));
    assert!(!PathMatch::Exact("/foo".into()).matches("/foo/"));
}

#[test]
fn regex_paths_match_the_whole_path() {
    let cases = [
        ("/v1/.*", "/v1/chat", true),
        ("/v1/.*", "/x/v1/chat", false),
        ("/v1", "/v1/chat", false),
        ("/v[0-9]+/models", "/v12/models", true),
        ("a|/b", "/b", true),
        ("a|/b", "/bb", false),
    ];
    for (pattern, path, want) in cases {
        let m = PathMatch::Regex(FullRegex::new(pattern).unwrap());
        assert_eq!(m.matches(path), want, "{pattern} on {path}");
    }
    let err = FullRegex::new("a)|(b").unwrap_err();
    assert!(err.contains("invalid regex \"a)|(b\""), "{err}");
}

#[test]
fn header_query_and_method_conditions() {
    let re = |p: &str| ValueMatch::Regex(FullRegex::new(p).unwrap());
    let hm = |name: &str, v: ValueMatch| HttpMatch {
        headers: vec![(name.into(), v)],
        ..HttpMatch::default()
    };
    let qm = |name: &str, v: ValueMatch| HttpMatch {
        query: vec![(name.into(), v)],
        ..HttpMatch::default()
    };
    let ex = |v: &str| ValueMatch::Exact(v.into());
    let get = HttpRequest::get;
    let cases: Vec<(&str, HttpMatch, HttpRequest, bool)> = vec![
        (
            "header exact",
            hm("x-model", ex("qwen")),
            get("/").header("X-Model", "qwen"),
            true,
        ),
        (
            "header value is case-sensitive",
            hm("x-model", ex("qwen")),
            get("/").header("x-model", "Qwen"),
            false,
        ),
        ("missing header", hm("x-model", ex("")), get("/"), false),
        (
            "header regex is anchored",
            hm("x-model", re("qw.n")),
            get("/").header("x-model", "qwen-7b"),
            false,
        ),
        (
            "header regex",
            hm("x-model", re("qw.n.*")),
            get("/").header("x-model", "qwen-7b"),
            true,
        ),
        ("query exact", qm("v", ex("2")), get("/?a=1&v=2"), true),
        (
            "query first occurrence counts",
            qm("v", ex("2")),
            get("/?v=1&v=2"),
            false,
        ),
        (
            "query name is case-sensitive",
            qm("v", ex("2")),
            get("/?V=2"),
            false,
        ),
        (
            "query without value",
            qm("flag", ex("")),
            get("/?flag"),
            true,
        ),
        ("no query string", qm("v", ex("2")), get("/"), false),
        ("query regex", qm("v", re("[0-9]+")), get("/?v=42"), true),
        (
            "query regex is anchored",
            qm("v", re("[0-9]+")),
            get("/?v=42x"),
            false,
        ),
        (
            "method matches",
            method(HttpMatch::default(), "POST"),
            get("/").method("POST"),
            true,
        ),
        (
            "method differs",
            method(HttpMatch::default(), "POST"),
            get("/"),
            false,
        ),
        (
            "later duplicate header entry is ignored",
            headers(HttpMatch::default(), &[("h", "1"), ("H", "2")]),
            get("/").header("h", "1"),
            true,
        ),
        (
            "later duplicate query entry is ignored",
            query(HttpMatch::default(), &[("q", "1"), ("q", "2")]),
            get("/?q=1"),
            true,
        ),
    ];
    for (name, m, req, want) in cases {
        assert_eq!(m.matches(&req), want, "{name}");
    }
}

#[test]
fn hostnames_filter_routes_by_host() {
    // (route hostnames, listener hostname, Host header, matches)
    type Case<'a> = (&'a [&'a str], Option<&'a str>, Option<&'a str>, bool);
    let cases: &[Case<'_>] = &[
        (&["example.com"], None, Some("example.com"), true),
        (&["example.com"], None, Some("Example.COM:8080"), true),
        (&["example.com"], None, Some("example.com."), true),
        (&["example.com"], None, Some("www.example.com"), false),
        (&["example.com"], None, None, false),
        (&["*.example.com"], None, Some("a.example.com"), true),
        (&["*.example.com"], None, Some("a.b.example.com:443"), true),
        (&["*.example.com"], None, Some("example.com"), false),
        (&["*.example.com"], None, Some("aexample.com"), false),
        (&[], None, Some("anything.io"), true),
        (&[], None, None, true),
        (&[], Some("*.example.com"), Some("a.example.com"), true),
        (&[], Some("*.example.com"), Some("other.io"), false),
        (
            &["*.example.com"],
            Some("a.example.com"),
            Some("a.example.com"),
            true,
        ),
        (
            &["*.example.com"],
            Some("a.example.com"),
            Some("b.example.com"),
            false,
        ),
        (
            &["a.example.com", "other.io"],
            Some("*.example.com"),
            Some("other.io"),
            false,
        ),
        (
            &["a.example.com", "other.io"],
            Some("*.example.com"),
            Some("a.example.com"),
            true,
        ),
    ];
    for (hosts, listener, host, want) in cases {
        let table = HttpRouteTable::build(
            vec![route("ns", "r", 1, hosts, vec![rule(vec![], "b")])],
            *listener,
        );
        let mut req = HttpRequest::get("/");
        if let Some(h) = host {
            req = req.header("host", *h);
        }
        assert_eq!(
            table.select(&req).is_some(),
            *want,
            "route {hosts:?} listener {listener:?} host {host:?}"
        );
    }
    assert!(hostname_matches("[::1]", "[::1]"));
}

#[test]
fn routes_outside_the_listener_hostname_are_skipped() {
    let table = HttpRouteTable::build(
        vec![
            route("ns", "in", 1, &["a.example.com"], vec![rule(vec![], "b")]),
            route("ns", "out", 1, &["other.io"], vec![rule(vec![], "b")]),
        ],
        Some("*.example.com"),
    );
    assert_eq!(table.skipped(), &[ObjectRef::new("ns", "out")]);
    assert_eq!(table.routes().len(), 1);
}

#[test]
fn weights_split_exactly() {
    let cases: &[(&[u32], usize, &[usize])] = &[
        (&[3, 1], 100, &[75, 25]),
        (&[1, 1], 100, &[50, 50]),
        (&[70, 30, 0], 100, &[70, 30, 0]),
        (&[1, 0], 10, &[10, 0]),
    ];
    for (weights, n, want) in cases {
        let backends = weights
            .iter()
            .enumerate()
            .map(|(i, w)| svc(&i.to_string(), *w))
            .collect();
        let r = HttpRule::new(None, vec![], vec![], backends, Timeouts::default());
        let table = HttpRouteTable::build(vec![route("ns", "r", 1, &[], vec![r])], None);
        let mut counts = vec![0; weights.len()];
        for _ in 0..*n {
            let s = table.select(&HttpRequest::get("/")).unwrap();
            let Some(BackendTarget::Service { service, .. }) = s.backend.map(|b| &b.target) else {
                panic!("no backend for {weights:?}");
            };
            counts[service.name.parse::<usize>().unwrap()] += 1;
        }
        assert_eq!(&counts, want, "weights {weights:?}");
    }
}

#[test]
fn a_rule_without_usable_backends_is_selected_with_no_backend() {
    for backends in [vec![], vec![svc("a", 0), svc("b", 0)]] {
        let r = HttpRule::new(
            None,
            vec![prefix("/x")],
            vec![],
            backends,
            Timeouts::default(),
        );
        let table = HttpRouteTable::build(
            vec![
                route("ns", "zero", 1, &[], vec![r]),
                route("ns", "fallback", 2, &[], vec![rule(vec![], "other")]),
            ],
            None,
        );
        // The rule still wins precedence: the request gets a 500, not the fallback route.
        assert_eq!(picked(&table, &HttpRequest::get("/x")), "ns/zero#0.0->-");
    }
}

#[test]
fn no_match_selects_nothing() {
    let table = HttpRouteTable::build(
        vec![route("ns", "r", 1, &[], vec![rule(vec![exact("/a")], "b")])],
        None,
    );
    assert_eq!(picked(&table, &HttpRequest::get("/b")), "none");
    assert_eq!(
        picked(&HttpRouteTable::default(), &HttpRequest::get("/")),
        "none"
    );
}

#[test]
fn replace_prefix_match_follows_the_spec_table() {
    let cases = [
        ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
        ("/foo", "/foo", "/xyz", "/xyz"),
        ("/foo/", "/foo", "/xyz", "/xyz/"),
        ("/foo/bar", "/foo", "", "/bar"),
        ("/foo/", "/foo", "", "/"),
        ("/foo", "/foo", "", "/"),
        ("/foo/", "/foo", "/", "/"),
        ("/foo", "/foo", "/", "/"),
        ("/foo/x", "/foo", "/bar", "/bar/x"),
        ("/foo/x", "/foo", "/", "/x"),
        ("/x", "/", "/bar", "/bar/x"),
        ("/x", "/", "/", "/x"),
        ("/", "/", "/", "/"),
        ("/", "/", "/bar", "/bar/"),
        ("/foobar", "/foo", "/xyz", "/foobar"),
    ];
    for (path, prefix, replacement, want) in cases {
        assert_eq!(
            rewrite_path(prefix, path, replacement),
            want,
            "{path} with prefix {prefix} replaced by {replacement:?}"
        );
    }
    let m = PathMatch::Prefix("/foo".into());
    assert_eq!(
        PathModifier::ReplacePrefixMatch("/v1".into()).apply(&m, "/foo/a"),
        "/v1/a"
    );
    assert_eq!(
        PathModifier::ReplaceFullPath("/v1".into()).apply(&m, "/foo/a"),
        "/v1"
    );
}

#[test]
fn header_modifier_set_add_remove_ignore_case() {
    let m = HeaderModifier {
        set: vec![
            ("x-set".into(), "new".into()),
            ("x-fresh".into(), "1".into()),
        ],
        add: vec![("x-add".into(), "b,c".into()), ("x-new".into(), "2".into())],
        remove: vec!["x-gone".into()],
    };
    let mut headers: Vec<(String, String)> = [
        ("X-Set", "old"),
        ("x-add", "a"),
        ("X-GONE", "1"),
        ("x-set", "older"),
        ("keep", "k"),
        ("x-Gone", "2"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    m.apply(&mut headers);
    let got: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("X-Set", "new"),
            ("x-add", "a,b,c"),
            ("keep", "k"),
            ("x-fresh", "1"),
            ("x-new", "2"),
        ]
    );
}

#[test]
fn redirect_location_applies_scheme_host_port_and_path() {
    let req = HttpRequest::get("/foo/bar?x=1").header("host", "Example.com:8080");
    let m = PathMatch::Prefix("/foo".into());
    let base = Redirect {
        scheme: None,
        hostname: None,
        path: None,
        port: None,
        status_code: DEFAULT_REDIRECT_STATUS,
    };
    let cases = [
        (
            "defaults keep the listener port",
            base.clone(),
            "http://example.com:8080/foo/bar?x=1",
        ),
        (
            "scheme alone uses its well-known port",
            Redirect {
                scheme: Some("https".into()),
                ..base.clone()
            },
            "https://example.com/foo/bar?x=1",
        ),
        (
            "hostname and default port",
            Redirect {
                hostname: Some("other.io".into()),
                port: Some(80),
                ..base.clone()
            },
            "http://other.io/foo/bar?x=1",
        ),
        (
            "explicit port is kept",
            Redirect {
                scheme: Some("https".into()),
                port: Some(8443),
                ..base.clone()
            },
            "https://example.com:8443/foo/bar?x=1",
        ),
        (
            "prefix path replaced",
            Redirect {
                path: Some(PathModifier::ReplacePrefixMatch("/v2".into())),
                ..base.clone()
            },
            "http://example.com:8080/v2/bar?x=1",
        ),
    ];
    for (name, r, want) in cases {
        assert_eq!(r.location(&req, &m, "http", 8080), want, "{name}");
    }
}

#[test]
fn rule_without_matches_gets_prefix_slash() {
    let r = HttpRule::new(None, vec![], vec![], vec![], Timeouts::default());
    assert_eq!(r.matches(), &[HttpMatch::default()]);
    assert_eq!(r.matches()[0].path, PathMatch::Prefix("/".into()));
}

#[test]
fn validation_reports_each_problem_with_its_field() {
    let bad_rule = HttpRule::new(
        None,
        vec![
            prefix("/ok"),
            HttpMatch {
                path: PathMatch::Exact("no-slash".into()),
                headers: vec![("bad header".into(), ValueMatch::Exact("v".into()))],
                ..HttpMatch::default()
            },
        ],
        vec![
            Filter::RequestRedirect(Redirect {
                scheme: Some("ftp".into()),
                hostname: None,
                path: Some(PathModifier::ReplacePrefixMatch("/x".into())),
                port: None,
                status_code: 304,
            }),
            Filter::UrlRewrite(hr::UrlRewrite::default()),
            Filter::RequestHeaderModifier(HeaderModifier {
                set: vec![("x-a".into(), "1".into())],
                add: vec![],
                remove: vec!["X-A".into()],
            }),
        ],
        vec![svc("a", 1_000_001)],
        Timeouts {
            request: Some(Duration::from_secs(1)),
            backend_request: Some(Duration::from_secs(2)),
        },
    );
    let r = route(
        "ns",
        "r",
        1,
        &["Bad_Host", "*.ok.io", "10.0.0.1"],
        vec![bad_rule],
    );
    let got: Vec<String> = hr::validate(&r)
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    let want = [
        "spec.hostnames[0]: invalid hostname \"Bad_Host\": must be a lowercase DNS name, optionally starting with \"*.\"",
        "spec.hostnames[2]: invalid hostname \"10.0.0.1\": must be a name, not an IP address",
        "spec.rules[0].matches[1].path.value: must start with \"/\", got \"no-slash\"",
        "spec.rules[0].matches[1].headers[0].name: invalid header name \"bad header\"",
        "spec.rules[0].filters: requestRedirect and urlRewrite cannot be used in the same rule",
        "spec.rules[0].backendRefs: must be empty when the rule has a requestRedirect filter, got 1 backends",
        "spec.rules[0].filters[0].requestRedirect.scheme: unsupported scheme \"ftp\": must be http or https",
        "spec.rules[0].filters[0].requestRedirect.statusCode: unsupported status code 304: must be one of 301, 302, 303, 307, 308",
        "spec.rules[0].filters[0].requestRedirect.path.replacePrefixMatch: requires exactly one PathPrefix match in the rule, got 2 matches",
        "spec.rules[0].filters[2].requestHeaderModifier.remove[0]: header \"X-A\" is already modified by set: one action per header",
        "spec.rules[0].backendRefs[0].weight: must be at most 1000000, got 1000001",
        "spec.rules[0].timeouts.backendRequest: must not be longer than request (1s), got 2s",
    ];
    assert_eq!(got, want);
}

#[test]
fn a_valid_route_has_no_problems() {
    let r = route(
        "ns",
        "r",
        1,
        &["*.example.com", "api.example.com"],
        vec![HttpRule::new(
            Some("rewrite".into()),
            vec![prefix("/v1")],
            vec![Filter::UrlRewrite(hr::UrlRewrite {
                hostname: Some("backend.internal".into()),
                path: Some(PathModifier::ReplacePrefixMatch("/".into())),
            })],
            vec![svc("a", 1_000_000)],
            Timeouts {
                request: Some(Duration::ZERO),
                backend_request: Some(Duration::from_secs(30)),
            },
        )],
    );
    assert!(hr::validate(&r).is_empty(), "{}", hr::validate(&r));
}
