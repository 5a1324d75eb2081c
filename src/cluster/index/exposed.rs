//! The Services that `k8s_external` exposes, by their external names.

use super::*;

/// What `k8s_external` needs of a Service that has external addresses or is headless.
#[derive(Debug, PartialEq, Eq)]
pub struct Exposed {
    pub headless: bool,
    pub external: Vec<External>,
    pub ports: Ports,
}

/// The Services `k8s_external` can answer for, kept beside the names so that the query path
/// reads them without the writer's lock. Only Services with external addresses, or headless
/// ones, are here: a cluster has few of either.
#[derive(Default)]
pub(super) struct ExposedServices {
    /// By `name.namespace`.
    pub(super) services: SharedMap<Box<str>, Arc<Exposed>>,
    /// The Services each external IP belongs to, for PTR.
    pub(super) by_ip: SharedMap<IpAddr, Vec<Key>>,
}

impl ExposedServices {
    pub(super) fn key(name: &str, namespace: &str) -> Box<str> {
        format!("{name}.{namespace}").into_boxed_str()
    }

    /// Follows `key` going from `old` to `new`.
    pub(super) fn update(&self, key: &Key, old: Option<&SlimService>, new: Option<&SlimService>) {
        let ips = |s: Option<&SlimService>| -> Vec<IpAddr> {
            s.into_iter()
                .flat_map(|s| &s.external)
                .filter_map(|e| match e {
                    External::Ip(ip) => Some(*ip),
                    External::Host(_) => None,
                })
                .collect()
        };
        let (before, after) = (ips(old), ips(new));
        for ip in before.iter().filter(|ip| !after.contains(ip)) {
            let empty = self.by_ip.get_mut(ip).is_some_and(|mut keys| {
                keys.retain(|k| k != key);
                keys.is_empty()
            });
            if empty {
                self.by_ip.remove_if(ip, |_, keys| keys.is_empty());
            }
        }
        for ip in after.iter().filter(|ip| !before.contains(ip)) {
            let mut keys = self.by_ip.entry(*ip).or_default();
            if !keys.contains(key) {
                keys.push(key.clone());
                keys.sort();
            }
        }
        let map_key = Self::key(&key.name, &key.namespace);
        let exposed = new.and_then(|s| {
            let headless = s.kind == ServiceKind::Headless;
            (headless || !s.external.is_empty()).then(|| Exposed {
                headless,
                external: s.external.clone(),
                ports: s.ports.clone(),
            })
        });
        match exposed {
            Some(e) => {
                if self.services.get(&map_key).is_none_or(|old| **old != e) {
                    self.services.insert(map_key, Arc::new(e));
                }
            }
            None => {
                self.services.remove(&map_key);
            }
        }
    }
}
