//! The fast path allocates nothing per answer (issue 6: "no allocation per query on the hot
//! path for cluster names"). This binary's allocator counts, per thread, what each thread
//! allocates; the test answers on its own thread and reads its own count, so the other tests
//! running beside it do not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use clusterdns::plugin::Transport;

use crate::support;

/// The system allocator, counting allocations (and reallocations) per thread.
pub struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down may still free and allocate.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every call goes to `System` unchanged; counting touches only a const-initialised
// thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_allocates_nothing_per_answer() {
    let running = support::demo().await;
    support::until_ready(&running).await;
    // Listeners are known by the port the Corefile names (`.:0` in the test's demo).
    let router = running.router(0).expect("the demo's router");
    let src: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let mut out = Vec::with_capacity(4096);
    for (name, qtype, rcode, answers) in [
        (
            "kubernetes.default.svc.cluster.local.",
            RecordType::A,
            "NOERROR",
            1,
        ),
        (
            "postgres-peers.db.svc.cluster.local.",
            RecordType::A,
            "NOERROR",
            3,
        ),
        (
            "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
            RecordType::SRV,
            "NOERROR",
            1,
        ),
        (
            "kubernetes.default.svc.cluster.local.",
            RecordType::AAAA,
            "NOERROR",
            0,
        ),
        (
            "missing.default.svc.cluster.local.",
            RecordType::A,
            "NXDOMAIN",
            0,
        ),
        ("1.0.96.10.in-addr.arpa.", RecordType::PTR, "NOERROR", 1),
    ] {
        let query = support::query(name, qtype, None).to_vec().unwrap();
        // The first answer may create what is made once (a metric's label set, say).
        assert!(
            router.answer_fast(&query, src, Transport::Udp, &mut out),
            "{name} {qtype} takes the fast path"
        );
        let reply = Message::from_vec(&out).unwrap();
        assert_eq!(
            (
                support::rcode_name(reply.metadata.response_code),
                reply.answers.len()
            ),
            (rcode.to_string(), answers),
            "{name} {qtype}"
        );
        let before = allocations();
        for _ in 0..100 {
            assert!(router.answer_fast(&query, src, Transport::Udp, &mut out));
        }
        let made = allocations() - before;
        assert_eq!(made, 0, "{name} {qtype}: {made} allocations in 100 answers");
    }
}
