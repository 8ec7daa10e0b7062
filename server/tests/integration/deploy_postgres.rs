//! `deploy/postgres/compose.yaml` (three replicas on PostgreSQL behind nginx) stays what its
//! how-to says: it parses as YAML, every replica points `FLAGWIRE_STORE` at the compose
//! PostgreSQL, health-checks `/healthz`, and the load balancer's upstream lists them all.

use serde_norway::Value;

fn file(name: &str) -> String {
    let path = format!("{}/../deploy/postgres/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_compose_example_runs_three_replicas_on_postgres_behind_the_balancer() {
    let compose: Value = serde_norway::from_str(&file("compose.yaml")).unwrap();
    let services = compose["services"].as_mapping().expect("services");
    assert!(services.contains_key("postgres"), "a postgres service");
    let replicas: Vec<&str> = services
        .keys()
        .filter_map(Value::as_str)
        .filter(|k| k.starts_with("flagwire-"))
        .collect();
    assert_eq!(replicas.len(), 3, "{replicas:?}");
    let nginx = file("nginx.conf");
    for name in &replicas {
        let s = &compose["services"][*name];
        let store = s["environment"]["FLAGWIRE_STORE"]
            .as_str()
            .unwrap_or_default();
        assert!(
            store.starts_with("postgres://") && store.contains("@postgres:5432/"),
            "{name}: {store:?}"
        );
        let check = format!("{:?}", s["healthcheck"]["test"]);
        assert!(check.contains("/healthz"), "{name}: {check}");
        assert!(
            nginx.contains(&format!("server {name}:7070")),
            "{name} missing from nginx.conf"
        );
    }
    assert!(
        compose["services"]["lb"]["ports"]
            .as_sequence()
            .is_some_and(|p| !p.is_empty())
    );
    assert!(nginx.contains("grpc_pass grpc://flagwire;"));
}
