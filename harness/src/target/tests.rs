use super::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn compose_rack() -> Target {
    load(&repo("fixtures/racks/compose/target.yaml")).unwrap()
}

/// A target file written to a temporary folder; errors name it.
fn parse(text: &str) -> Result<Target, InputError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rack.yaml");
    std::fs::write(&path, text).unwrap();
    load(&path)
}

const MINIMAL: &str = "name: r
sidecars:
  client: { admin: 'http://127.0.0.1:1', site: outpost }
load:
  client: { url: 'http://127.0.0.1:2' }
control_plane:
  tether: { api: 'http://127.0.0.1:3' }
";

#[test]
fn the_compose_rack_reads() {
    let target = compose_rack();
    assert_eq!(target.name, "compose-rack");
    assert_eq!(target.sidecars.len(), 4);
    assert_eq!(target.sidecars["svc-region"].site, Site::Region);
    assert!(target.follows_log());
    assert_eq!(target.digest.len(), 64);
    assert_eq!(target.secrets, ["Bearer rack-token-5f1d2c"]);
    assert!(matches!(
        &target.links[&Link::Xds],
        LinkActuator::Toxiproxy { proxies, .. } if proxies == &["xds"]
    ));
}

#[test]
fn errors_name_line_and_column() {
    let unknown = parse(&format!("{MINIMAL}colour: blue\n")).unwrap_err();
    assert_eq!(unknown.location.line, 8, "{unknown}");
    assert!(unknown.message.contains("colour"), "{unknown}");

    let bad_url = parse(&MINIMAL.replace("'http://127.0.0.1:1'", "'127.0.0.1:1'")).unwrap_err();
    assert_eq!(
        (bad_url.location.line, bad_url.location.column),
        (3, 20),
        "{bad_url}"
    );
    assert!(bad_url.message.contains("http://"), "{bad_url}");

    let bad_link = parse(&format!(
        "{MINIMAL}links:\n  wan: {{ toxiproxy: {{ api: 'http://h:1', proxies: [x] }} }}\n"
    ))
    .unwrap_err();
    assert_eq!(bad_link.location.line, 9, "{bad_link}");
    assert!(
        bad_link.message.contains("unknown link `wan`"),
        "{bad_link}"
    );

    let load_elsewhere =
        parse(&MINIMAL.replace("load:\n  client", "load:\n  gateway")).unwrap_err();
    assert_eq!(load_elsewhere.location.line, 5, "{load_elsewhere}");

    let foreign = MINIMAL.replace(
        "tether: { api: 'http://127.0.0.1:3' }",
        "foreign:\n    changes:\n      set_weights: { run: [x] }",
    );
    let kind = parse(&foreign).unwrap_err();
    assert_eq!(kind.location.line, 9, "{kind}");
    assert!(kind.message.contains("set_route_weights"), "{kind}");
}

#[test]
fn credentials_are_collected_and_redacted() {
    let target = parse(&format!(
        "{}links:\n  xds:\n    toxiproxy: {{ api: 'http://ops:hunter2@h:1', proxies: [x] }}\n  data:\n    command:\n      apply: {{ run: [a], env: {{ TOKEN: t0k3n }} }}\n      remove: {{ run: [b] }}\n",
        MINIMAL
    ))
    .unwrap();
    let redactor = Redactor::of(&target);
    let text = "GET http://ops:hunter2@h:1 with TOKEN=t0k3n";
    assert_eq!(
        redactor.redact(text),
        "GET http://***:***@h:1 with TOKEN=***"
    );
    // Its negative control: nothing else is touched.
    assert_eq!(redactor.redact("hunter"), "hunter");
}

#[test]
fn a_suite_fits_the_rack_it_was_written_for() {
    let plan = crate::suite::load(&repo("suites/outpost-partition.yaml")).unwrap();
    compose_rack().fits(&plan).unwrap();
}

#[test]
fn what_a_target_lacks_is_named() {
    let rack = compose_rack();
    let unfit = |suite: &str| {
        let plan = crate::suite::load(&repo(suite)).unwrap();
        rack.fits(&plan).unwrap_err().to_string()
    };
    // svc-v1 runs in the region in this suite, on the outpost in the rack.
    let sites = unfit("suites/negative/data-path-partition.yaml");
    assert!(sites.contains("`svc-v1` on the region"), "{sites}");
    assert!(sites.contains("target.yaml:8:3"), "{sites}");
    let down = unfit("suites/negative/control-plane-stays-down.yaml");
    assert!(down.contains("control_plane: down"), "{down}");
    let packet = unfit("suites/packet-degraded.yaml");
    assert!(packet.contains("link: packet"), "{packet}");
    let containers = unfit("suites/container-faults.yaml");
    assert!(containers.contains("container fault"), "{containers}");
}

#[test]
fn a_toxiproxy_actuator_cannot_make_packet_faults() {
    let rack = compose_rack();
    let loss = Fault::Loss { percent: 5.0 };
    assert!(rack.cannot(Link::Xds, &loss).is_some());
    assert!(rack.cannot(Link::Xds, &Fault::Blackhole).is_none());
    // `all` is every link the target names.
    assert!(rack.cannot(Link::All, &Fault::Blackhole).is_none());
    let no_links = parse(MINIMAL).unwrap();
    assert!(no_links.cannot(Link::Xds, &Fault::Blackhole).is_some());
}

#[test]
fn change_kinds_are_the_change_apis_names() {
    let change = Change::RemoveRoute {
        router: "r".into(),
        route: "x".into(),
    };
    let json = serde_json::to_value(&change).unwrap();
    let key = json.as_object().unwrap().keys().next().unwrap().clone();
    assert_eq!(key, change.kind());
}

#[test]
fn state_folders_differ_per_target() {
    let rack = compose_rack();
    let other = parse(MINIMAL).unwrap();
    assert_ne!(rack.state_dir(), other.state_dir());
    assert!(rack.state_dir().ends_with(format!(
        "compose-rack-{}",
        &rack.state_dir().file_name().unwrap().to_string_lossy()[13..]
    )));
}

#[test]
fn a_suite_that_samples_no_sidecar_cannot_judge_a_foreign_control_plane_by_them() {
    let mut plan = crate::suite::load(&repo("suites/propagation.yaml")).unwrap();
    plan.observe.sidecars = crate::plan::Sidecars::None;
    let foreign = parse(&MINIMAL.replace(
        "tether: { api: 'http://127.0.0.1:3' }",
        "foreign:\n    changes:\n      set_route_weights: { run: [x] }",
    ))
    .unwrap();
    let unfit = foreign.fits(&plan).unwrap_err().to_string();
    assert!(
        unfit.contains("`observe: { sidecars: none }`") && unfit.contains("`propagation`"),
        "{unfit}"
    );
    // Against tether's control plane propagation reads its log: no such complaint.
    let ours = parse(MINIMAL).unwrap().fits(&plan).unwrap_err().to_string();
    assert!(!ours.contains("sidecars: none"), "{ours}");
}
