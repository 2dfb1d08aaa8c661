//! One rule for every discovery source: a discovered instance of a configured service joins
//! it (the configuration keeps its settings); a discovered service the configuration does
//! not name is added as discovered.

use crate::ServiceSpec;

/// The configured services with what `discovered` adds, configured services first (in their
/// order), then new services by name. An instance id already present in a service is kept
/// as it is (the first source that names it wins), so a source cannot replace a configured
/// instance.
pub fn merge(configured: Vec<ServiceSpec>, discovered: &[ServiceSpec]) -> Vec<ServiceSpec> {
    let mut out = configured;
    let known = out.len();
    let mut added: Vec<ServiceSpec> = Vec::new();
    for found in discovered {
        let target = match out[..known].iter_mut().find(|s| s.id == found.id) {
            Some(spec) => spec,
            None => match added.iter_mut().find(|s| s.id == found.id) {
                Some(spec) => spec,
                None => {
                    added.push(found.clone());
                    continue;
                }
            },
        };
        for instance in &found.instances {
            if !target.instances.iter().any(|i| i.id == instance.id) {
                target.instances.push(instance.clone());
            }
        }
    }
    added.sort_by(|a, b| a.id.cmp(&b.id));
    out.extend(added);
    out
}

#[cfg(test)]
mod tests {
    use toolmesh_core::InstanceId;
    use toolmesh_transport::Endpoint;

    use super::*;
    use crate::InstanceSpec;

    fn spec(service: &str, instances: &[&str]) -> ServiceSpec {
        let mut spec = ServiceSpec::single(service, Endpoint::url("http://127.0.0.1:1/mcp"));
        spec.instances = instances
            .iter()
            .map(|i| {
                InstanceSpec::new(
                    InstanceId::new(*i),
                    Endpoint::url(format!("http://127.0.0.1:1/{i}")),
                )
            })
            .collect();
        spec
    }

    #[test]
    fn discovered_instances_join_configured_services_and_new_services_follow() {
        let mut configured = spec("search", &["search-1"]);
        configured.max_failover_attempts = 7;
        let merged = merge(
            vec![configured, spec("files", &["files-1"])],
            &[
                spec("zeta", &["z-1"]),
                spec("search", &["search-1", "search-2"]),
                spec("alpha", &["a-1"]),
                spec("zeta", &["z-2"]),
            ],
        );
        let names: Vec<_> = merged.iter().map(|s| s.id.to_string()).collect();
        assert_eq!(names, ["search", "files", "alpha", "zeta"]);
        let search = &merged[0];
        assert_eq!(
            search.max_failover_attempts, 7,
            "the configuration keeps its settings"
        );
        let ids: Vec<_> = search.instances.iter().map(|i| i.id.to_string()).collect();
        assert_eq!(ids, ["search-1", "search-2"]);
        assert_eq!(
            search.instances[0].endpoint,
            Endpoint::url("http://127.0.0.1:1/search-1")
        );
        assert_eq!(
            merged[3].instances.len(),
            2,
            "two sources' instances of one new service"
        );
    }
}
