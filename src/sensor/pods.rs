//! Pod metadata by pod UID, for `k8s.ns.name`, `k8s.pod.name` and `k8s.pod.label[...]`.
//!
//! The cgroup path gives the sensor a pod UID (`container.rs`); the names come from the API
//! server. [`watch_node_pods`] lists and then watches the pods scheduled on this node (a
//! `spec.nodeName` field selector, so a node's sensor never holds the cluster's pods) and
//! keeps a [`PodCache`] up to date; the event path only reads the cache and never waits on
//! the network, except for the short, bounded [`PodCache::lookup_wait`] the enricher may
//! use the first time it meets a pod UID (a container that starts before its pod's watch
//! event has arrived).
//!
//! How a watch event changes the cache is the pure [`apply_watch_event`], tested here;
//! the watch loop itself needs an API server.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

/// What the rules need to know about a pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodMeta {
    pub ns: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl PodMeta {
    /// The metadata of a pod object, with its UID; `None` without a UID.
    pub fn from_pod(pod: &Pod) -> Option<(String, PodMeta)> {
        let m = &pod.metadata;
        let uid = m.uid.clone().filter(|u| !u.is_empty())?;
        Some((
            uid,
            PodMeta {
                ns: m.namespace.clone().unwrap_or_default(),
                name: m.name.clone().unwrap_or_default(),
                labels: m.labels.clone().unwrap_or_default(),
            },
        ))
    }
}

/// How long a deleted pod's metadata is kept: its containers' last events (and records
/// still in flight) should still name it.
pub const DELETED_POD_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Entry {
    meta: Arc<PodMeta>,
    deleted_at: Option<Instant>,
}

/// The cache's contents: pods by UID. [`apply_watch_event`] works on it.
#[derive(Debug, Default)]
pub struct PodMap {
    pods: HashMap<String, Entry>,
}

impl PodMap {
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    fn get(&self, uid: &str) -> Option<&Arc<PodMeta>> {
        self.pods.get(uid).map(|e| &e.meta)
    }

    fn upsert(&mut self, pod: &Pod) {
        if let Some((uid, meta)) = PodMeta::from_pod(pod) {
            self.pods.insert(
                uid,
                Entry {
                    meta: Arc::new(meta),
                    deleted_at: None,
                },
            );
        }
    }

    fn mark_deleted(&mut self, pod: &Pod, now: Instant) {
        if let Some(uid) = pod.metadata.uid.as_deref()
            && let Some(e) = self.pods.get_mut(uid)
        {
            e.deleted_at.get_or_insert(now);
        }
    }

    /// Forget pods deleted more than `grace` before `now`.
    fn purge(&mut self, now: Instant, grace: Duration) {
        self.pods
            .retain(|_, e| e.deleted_at.is_none_or(|t| now.duration_since(t) < grace));
    }

    /// Replace the live set with a fresh list: pods missing from it count as deleted now.
    pub fn replace_all(&mut self, pods: &[Pod], now: Instant) {
        let mut listed = std::collections::HashSet::new();
        for p in pods {
            if let Some(uid) = p.metadata.uid.as_deref() {
                listed.insert(uid.to_string());
            }
            self.upsert(p);
        }
        for (uid, e) in self.pods.iter_mut() {
            if !listed.contains(uid) {
                e.deleted_at.get_or_insert(now);
            }
        }
        self.purge(now, DELETED_POD_GRACE);
    }
}

/// A watch event, reduced to what the cache needs.
#[derive(Debug, Clone)]
pub enum PodEvent<'a> {
    Added(&'a Pod),
    Modified(&'a Pod),
    Deleted(&'a Pod),
    Bookmark(&'a str),
    /// The API server reported an error (`code`: HTTP status; 410 = the resource version
    /// is too old, relist).
    Error {
        code: u16,
        message: &'a str,
    },
}

impl<'a> PodEvent<'a> {
    pub fn from_watch(ev: &'a ::kube::core::WatchEvent<Pod>) -> PodEvent<'a> {
        use ::kube::core::WatchEvent;
        match ev {
            WatchEvent::Added(p) => PodEvent::Added(p),
            WatchEvent::Modified(p) => PodEvent::Modified(p),
            WatchEvent::Deleted(p) => PodEvent::Deleted(p),
            WatchEvent::Bookmark(b) => PodEvent::Bookmark(&b.metadata.resource_version),
            WatchEvent::Error(s) => PodEvent::Error {
                code: s.code,
                message: &s.message,
            },
        }
    }
}

/// What the watch loop does after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchStep {
    /// Keep watching; resume from this resource version if the stream ends.
    Continue(Option<String>),
    /// The resource version expired (410 Gone): list again.
    Relist,
    /// Another error: back off and list again.
    Error(String),
}

/// Apply one watch event to the map (pure: the time is passed in). Returns what the watch
/// loop should do next.
pub fn apply_watch_event(map: &mut PodMap, ev: PodEvent<'_>, now: Instant) -> WatchStep {
    let rv = |p: &Pod| p.metadata.resource_version.clone();
    match ev {
        PodEvent::Added(p) | PodEvent::Modified(p) => {
            map.upsert(p);
            WatchStep::Continue(rv(p))
        }
        PodEvent::Deleted(p) => {
            map.mark_deleted(p, now);
            map.purge(now, DELETED_POD_GRACE);
            WatchStep::Continue(rv(p))
        }
        PodEvent::Bookmark(v) => WatchStep::Continue(Some(v.to_string())),
        PodEvent::Error { code: 410, .. } => WatchStep::Relist,
        PodEvent::Error { code, message } => WatchStep::Error(format!("{code}: {message}")),
    }
}

#[derive(Debug, Default)]
struct Shared {
    map: RwLock<PodMap>,
    /// Bumped on every change; `lookup_wait` sleeps on it.
    generation: Mutex<u64>,
    changed: Condvar,
}

/// Pod metadata by UID: a cheap, cloneable, thread-safe handle shared by the watcher
/// (writer) and the enricher (reader).
#[derive(Debug, Clone, Default)]
pub struct PodCache {
    shared: Arc<Shared>,
}

impl PodCache {
    pub fn new() -> PodCache {
        PodCache::default()
    }

    /// The pod with this UID, if known. Holds a read lock for one hash lookup.
    pub fn lookup(&self, uid: &str) -> Option<PodMeta> {
        self.get(uid).map(|m| (*m).clone())
    }

    /// Like [`Self::lookup`], sharing the cached value instead of copying it.
    pub fn get(&self, uid: &str) -> Option<Arc<PodMeta>> {
        let map = self.shared.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(uid).cloned()
    }

    /// The pod with this UID, waiting at most `max` for the watcher to learn it.
    pub fn lookup_wait(&self, uid: &str, max: Duration) -> Option<PodMeta> {
        let deadline = Instant::now() + max;
        let mut seen = *self
            .shared
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(m) = self.lookup(uid) {
                return Some(m);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let guard = self
                .shared
                .generation
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *guard != seen {
                // Changed between the lookup and the lock: look again.
                seen = *guard;
                continue;
            }
            let (guard, _) = self
                .shared
                .changed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner());
            seen = *guard;
        }
    }

    /// How many pods are known (deleted ones still in their grace period included).
    pub fn len(&self) -> usize {
        self.shared
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Insert or replace one pod (tests, and callers that learn pods another way).
    pub fn insert(&self, uid: &str, meta: PodMeta) {
        self.update(|m| {
            m.pods.insert(
                uid.to_string(),
                Entry {
                    meta: Arc::new(meta),
                    deleted_at: None,
                },
            );
        });
    }

    /// Apply one watch event; see [`apply_watch_event`].
    pub fn apply(&self, ev: PodEvent<'_>) -> WatchStep {
        let now = Instant::now();
        self.update(|m| apply_watch_event(m, ev, now))
    }

    /// Replace the cache's contents with a fresh list.
    pub fn replace_all(&self, pods: &[Pod]) {
        let now = Instant::now();
        self.update(|m| m.replace_all(pods, now));
    }

    fn update<R>(&self, f: impl FnOnce(&mut PodMap) -> R) -> R {
        let r = {
            let mut map = self.shared.map.write().unwrap_or_else(|e| e.into_inner());
            f(&mut map)
        };
        let mut g = self
            .shared
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *g = g.wrapping_add(1);
        self.shared.changed.notify_all();
        r
    }
}

/// List, then watch, the pods on `node_name`, keeping `cache` current. Runs until the
/// task is dropped. Errors (API server unreachable, RBAC, an expired resource version)
/// print one line to stderr and the loop lists again after a backoff (1 s doubling to 60 s,
/// reset once a list succeeds).
pub async fn watch_node_pods(client: ::kube::Client, node_name: String, cache: PodCache) {
    use ::kube::api::{Api, ListParams, WatchParams};
    use futures::StreamExt;

    let api: Api<Pod> = Api::all(client);
    let selector = format!("spec.nodeName={node_name}");
    let mut backoff = Duration::from_secs(1);
    loop {
        let list = match api.list(&ListParams::default().fields(&selector)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "secmon: cannot list pods on node {node_name}: {e}; retrying in {}s",
                    backoff.as_secs()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        cache.replace_all(&list.items);
        let mut version = list.metadata.resource_version.unwrap_or_default();
        'watch: loop {
            let wp = WatchParams::default().fields(&selector).timeout(290);
            let stream = match api.watch(&wp, &version).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("secmon: pod watch on node {node_name} failed: {e}; relisting");
                    break 'watch;
                }
            };
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                let ev = match item {
                    Ok(ev) => ev,
                    Err(e) => {
                        eprintln!("secmon: pod watch on node {node_name} broke: {e}; relisting");
                        break 'watch;
                    }
                };
                match cache.apply(PodEvent::from_watch(&ev)) {
                    WatchStep::Continue(Some(v)) => version = v,
                    WatchStep::Continue(None) => {}
                    WatchStep::Relist => break 'watch,
                    WatchStep::Error(msg) => {
                        eprintln!("secmon: pod watch on node {node_name}: {msg}; relisting");
                        break 'watch;
                    }
                }
            }
            // The server closed the watch (its timeout): resume from the last version.
        }
        tokio::time::sleep(backoff).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, ns: &str, name: &str, rv: &str, app: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                namespace: Some(ns.into()),
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                labels: Some([("app".to_string(), app.to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn add_modify_delete() {
        let mut m = PodMap::default();
        let t0 = Instant::now();
        let p = pod("u1", "shop", "web-0", "10", "web");
        assert_eq!(
            apply_watch_event(&mut m, PodEvent::Added(&p), t0),
            WatchStep::Continue(Some("10".into()))
        );
        let got = m.get("u1").expect("added");
        assert_eq!(got.ns, "shop");
        assert_eq!(got.name, "web-0");
        assert_eq!(got.labels.get("app").map(String::as_str), Some("web"));

        let p2 = pod("u1", "shop", "web-0", "11", "web-v2");
        apply_watch_event(&mut m, PodEvent::Modified(&p2), t0);
        assert_eq!(
            m.get("u1").and_then(|p| p.labels.get("app").cloned()),
            Some("web-v2".into())
        );

        // Deleted pods stay for the grace period, then go.
        apply_watch_event(&mut m, PodEvent::Deleted(&p2), t0);
        assert!(m.get("u1").is_some());
        let later = t0 + DELETED_POD_GRACE + Duration::from_secs(1);
        let other = pod("u2", "shop", "web-1", "12", "web");
        apply_watch_event(&mut m, PodEvent::Deleted(&other), later);
        assert!(m.get("u1").is_none(), "purged after the grace period");
    }

    #[test]
    fn pods_without_uid_are_ignored() {
        let mut m = PodMap::default();
        let mut p = pod("", "a", "b", "1", "x");
        apply_watch_event(&mut m, PodEvent::Added(&p), Instant::now());
        p.metadata.uid = None;
        apply_watch_event(&mut m, PodEvent::Added(&p), Instant::now());
        assert!(m.is_empty());
    }

    #[test]
    fn bookmarks_and_errors_steer_the_loop() {
        let mut m = PodMap::default();
        let now = Instant::now();
        assert_eq!(
            apply_watch_event(&mut m, PodEvent::Bookmark("99"), now),
            WatchStep::Continue(Some("99".into()))
        );
        assert_eq!(
            apply_watch_event(
                &mut m,
                PodEvent::Error {
                    code: 410,
                    message: "too old resource version"
                },
                now
            ),
            WatchStep::Relist
        );
        assert!(matches!(
            apply_watch_event(
                &mut m,
                PodEvent::Error {
                    code: 500,
                    message: "boom"
                },
                now
            ),
            WatchStep::Error(ref s) if s.contains("500") && s.contains("boom")
        ));
    }

    #[test]
    fn kube_watch_events_convert() {
        use ::kube::core::WatchEvent;
        let p = pod("u9", "ns", "n", "5", "a");
        let ev = WatchEvent::Added(p);
        let mut m = PodMap::default();
        apply_watch_event(&mut m, PodEvent::from_watch(&ev), Instant::now());
        assert_eq!(m.get("u9").map(|p| p.name.clone()), Some("n".into()));
    }

    #[test]
    fn relist_replaces_and_tombstones_missing_pods() {
        let mut m = PodMap::default();
        let t0 = Instant::now();
        m.replace_all(
            &[pod("a", "n", "a", "1", "x"), pod("b", "n", "b", "1", "x")],
            t0,
        );
        assert_eq!(m.len(), 2);
        m.replace_all(&[pod("b", "n", "b2", "2", "x")], t0);
        // a is a tombstone until the grace period passes.
        assert!(m.get("a").is_some());
        assert_eq!(m.get("b").map(|p| p.name.clone()), Some("b2".into()));
        m.replace_all(&[pod("b", "n", "b2", "2", "x")], t0 + DELETED_POD_GRACE * 2);
        assert!(m.get("a").is_none());
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn cache_handle_is_shared_and_thread_safe() {
        let cache = PodCache::new();
        let writer = cache.clone();
        let p = pod("u1", "shop", "web-0", "1", "web");
        std::thread::spawn(move || {
            writer.apply(PodEvent::Added(&p));
        })
        .join()
        .expect("writer thread");
        assert_eq!(cache.lookup("u1").map(|m| m.name), Some("web-0".into()));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.lookup("nope"), None);
    }

    #[test]
    fn lookup_wait_returns_when_the_pod_arrives_and_gives_up_in_time() {
        let cache = PodCache::new();
        // Not there: gives up after about `max`.
        let t = Instant::now();
        assert_eq!(cache.lookup_wait("late", Duration::from_millis(30)), None);
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");

        // Arrives while waiting: returned well before the limit.
        let writer = cache.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            writer.insert(
                "late",
                PodMeta {
                    ns: "ns".into(),
                    name: "late-pod".into(),
                    labels: BTreeMap::new(),
                },
            );
        });
        let t = Instant::now();
        let got = cache.lookup_wait("late", Duration::from_secs(10));
        assert_eq!(got.map(|m| m.name), Some("late-pod".into()));
        assert!(t.elapsed() < Duration::from_secs(5));
        h.join().expect("writer");
    }
}
