//! The one integration test binary: DNS cases as data, real clients, the command line,
//! objects-file reloads and malformed packets.

mod abuse;
mod allocations;
mod any;
mod apiserver;
mod autopath;
mod bind;
mod bufsize;
mod cases;
mod cli;
mod clients;
mod compat;
mod deploy;
mod directives;
mod dns64;
mod dnstap;
mod dualstack;
mod file;
mod files;
mod forward;
mod fuzzed;
mod hosts;
mod k8s_external;
mod layers;
mod live;
mod multicluster;
mod nodelocal;
mod operability;
mod packets;
mod process;
mod readme;
mod resolvers;
mod rewrite;
mod support;
mod template;
mod tls;
mod transfer;
mod upstream;
mod view;
mod zonal;

/// Counts each thread's allocations for `allocations.rs`; otherwise the system allocator.
#[global_allocator]
static ALLOCATOR: allocations::Counting = allocations::Counting;
