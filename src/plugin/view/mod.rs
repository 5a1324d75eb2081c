//! `view`: a server block whose expressions must hold for a query to be routed to it
//! (split DNS). Blocks for the same zone are tried in Corefile order; a block without a view
//! takes what no view before it took. The expressions are compiled when the Corefile loads;
//! routing asks the block's [`Viewer`] per query, knowing nothing of expressions. The block's
//! metrics carry the view's name in their `view` label.

pub mod config;
pub mod expr;

use std::sync::Arc;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{Request, Viewer};

/// A block's view: its name and what must hold.
#[derive(Debug)]
pub struct View {
    name: String,
    exprs: Vec<Arc<expr::Expr>>,
}

impl Viewer for View {
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether every expression holds for the query.
    fn admits(&self, req: &Request, meta: &[(&'static str, String)]) -> bool {
        let q = req.query;
        let (name, qtype, class) = (
            q.name().to_string(),
            q.query_type().to_string(),
            q.query_class().to_string(),
        );
        let edns = req.edns;
        let query = expr::Query {
            name: &name,
            qtype: &qtype,
            class: &class,
            client: req.src,
            server_ip: req.local.ip,
            server_port: req.local.port,
            proto: req.transport.as_str(),
            bufsize: edns.map_or(512, |e| e.max_payload()),
            dnssec_ok: req.dnssec_ok,
            id: req.id,
            // The server routes only QUERY (others are answered NOTIMP before).
            opcode: 0,
            size: req.size,
            metadata: meta,
        };
        self.exprs.iter().all(|e| e.holds(&query))
    }
}

/// Gives the block its view.
pub fn setup(cfg: &config::ViewConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.view = Some(Arc::new(View {
        name: cfg.name.clone(),
        exprs: cfg.exprs.iter().map(|(_, e)| e.clone()).collect(),
    }));
    Ok(())
}
