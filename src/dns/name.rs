//! Small helpers about DNS names shared by the config, the cluster index and the handlers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// Parses `text` as an absolute, lower-cased domain name.
pub fn fqdn(text: &str) -> Option<Name> {
    let mut name = Name::from_ascii(text).ok()?;
    name.set_fqdn(true);
    Some(name.to_lowercase())
}

/// Reads a name in presentation form as hickory prints it, escapes and all (`\\.` inside a
/// label, `\\DDD` for any byte), into an absolute name. hickory's own text parsers refuse labels
/// holding spaces or control bytes even when escaped; a client may send such a name, and a
/// template that quotes it must read it back unchanged.
pub fn from_presentation(text: &str) -> Option<Name> {
    if text == "." {
        return Some(Name::root());
    }
    let bytes = text.as_bytes();
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let rest = &bytes[i + 1..];
                if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
                    let n = rest[..3]
                        .iter()
                        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
                    label.push(u8::try_from(n).ok()?);
                    i += 4;
                } else {
                    label.push(*rest.first()?);
                    i += 2;
                }
            }
            b'.' => {
                if label.is_empty() {
                    return None;
                }
                labels.push(std::mem::take(&mut label));
                i += 1;
            }
            b => {
                label.push(b);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let mut name = Name::from_labels(labels).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// A name in presentation form as RFC 1035 writes it: absolute, `\\.`-style escapes for the
/// characters zone files give a meaning, `\\DDD` (decimal) for bytes that do not print, the space
/// among them, so that the name stays one word.
/// (hickory's `Display` writes the three digits in octal.) [`from_presentation`] reads it back.
pub fn to_presentation(name: &Name) -> String {
    if name.is_root() {
        return ".".into();
    }
    let mut out = String::new();
    for label in name.iter() {
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out.push('.');
    }
    out
}

/// `label.parent`, or `None` if the label is not a valid DNS label or the name gets too long.
pub fn child(parent: &Name, label: &str) -> Option<Name> {
    parent.prepend_label(label).ok()
}

/// `labels[0].labels[1]….parent` built from the most specific label first.
pub fn join(labels: &[&str], parent: &Name) -> Option<Name> {
    labels
        .iter()
        .rev()
        .try_fold(parent.clone(), |name, label| child(&name, label))
}

/// The reverse-lookup name of an IP address: `4.3.2.1.in-addr.arpa.` or the 32-nibble
/// `ip6.arpa.` form.
pub fn reverse_name(ip: IpAddr) -> Name {
    let text = match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                s.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
                s.push('.');
                s.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str("ip6.arpa.");
            s
        }
    };
    Name::from_ascii(text).unwrap_or_else(|_| Name::root())
}

/// The inverse of [`reverse_name`]: the address a whole reverse name stands for (four decimal
/// labels under `in-addr.arpa.`, 32 nibbles under `ip6.arpa.`); `None` for anything else.
pub fn reverse_ip(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.iter().collect();
    let (suffix, digits) = match labels.len() {
        6 => (&labels[4..], &labels[..4]),
        34 => (&labels[32..], &labels[..32]),
        _ => return None,
    };
    let is = |want: [&str; 2]| {
        suffix
            .iter()
            .zip(want)
            .all(|(l, w)| l.eq_ignore_ascii_case(w.as_bytes()))
    };
    if digits.len() == 4 && is(["in-addr", "arpa"]) {
        let mut octets = [0u8; 4];
        for (i, l) in digits.iter().enumerate() {
            let text = std::str::from_utf8(l).ok()?;
            // No sign, no leading zeros beyond "0" itself: the form reverse names are written in.
            if text.is_empty() || text.len() > 3 || (text.len() > 1 && text.starts_with('0')) {
                return None;
            }
            octets[3 - i] = text.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if digits.len() == 32 && is(["ip6", "arpa"]) {
        let mut bits: u128 = 0;
        for l in digits.iter().rev() {
            let [c] = l else { return None };
            let nibble = char::from(*c).to_digit(16)?;
            bits = (bits << 4) | u128::from(nibble);
        }
        return Some(IpAddr::V6(Ipv6Addr::from(bits)));
    }
    None
}

/// The reverse zones that together cover `ip/prefix`: one zone when the prefix falls on a label
/// boundary (8 bits for IPv4, 4 for IPv6), otherwise every zone one label longer that the
/// network spans, as CoreDNS expands them.
pub fn reverse_zones(ip: IpAddr, prefix: u8) -> Vec<Name> {
    let (step, max) = match ip {
        IpAddr::V4(_) => (8u8, 32u8),
        IpAddr::V6(_) => (4u8, 128u8),
    };
    let prefix = prefix.min(max);
    let labels = prefix.div_ceil(step);
    let extra_bits = labels * step - prefix;
    let base = mask(ip, prefix);
    (0u32..(1u32 << extra_bits))
        .map(|i| {
            let ip = add_at(base, i, max - labels * step);
            let full = reverse_name(ip);
            let keep = usize::from(labels) + 2; // + in-addr/ip6 + arpa
            full.trim_to(keep)
        })
        .collect()
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// `ip + (i << shift)`.
fn add_at(ip: IpAddr, i: u32, shift: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(
            u32::from(v4).wrapping_add(i.checked_shl(u32::from(shift)).unwrap_or(0)),
        )),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(
            u128::from(v6).wrapping_add(u128::from(i).checked_shl(u32::from(shift)).unwrap_or(0)),
        )),
    }
}

/// An IP address written with dashes, as in pod and endpoint names: `10-0-0-1`, `fd00--1`.
pub fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// The inverse of [`dashed`]: `10-0-0-1` → 10.0.0.1, `fd00--1` → fd00::1.
pub fn undash(label: &str) -> Option<IpAddr> {
    if label.matches('-').count() == 3
        && !label.contains("--")
        && let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>()
    {
        return Some(IpAddr::V4(v4));
    }
    label
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// A name in lower-case wire form with where each of its labels starts (the root's
/// terminating zero included): how the fast path reads a question, and how the index and the
/// routing find its zone without building a `Name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireName<'a> {
    key: &'a [u8],
    starts: &'a [u8],
}

impl<'a> WireName<'a> {
    /// `key` as written, `starts` the offset of each of its labels' length bytes.
    pub fn new(key: &'a [u8], starts: &'a [u8]) -> Self {
        Self { key, starts }
    }

    /// The name's bytes: how the index keys it.
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// How many labels it has, the root's counted.
    pub fn label_count(&self) -> usize {
        self.starts.len()
    }

    /// The `i`-th label, counted from the left (empty for the root or past the end).
    pub fn label(&self, i: usize) -> &'a [u8] {
        let Some(&at) = self.starts.get(i) else {
            return &[];
        };
        let at = usize::from(at);
        let len = usize::from(self.key[at]);
        &self.key[at + 1..at + 1 + len]
    }

    /// Whether it is `zone` (lower-case wire form) or a name below it.
    pub fn is_in(&self, zone: &[u8]) -> bool {
        let Some(at) = self.key.len().checked_sub(zone.len()) else {
            return false;
        };
        self.key.ends_with(zone) && u8::try_from(at).is_ok_and(|at| self.starts.contains(&at))
    }
}

/// Where each label of the uncompressed wire name `wire` starts, the root's zero included.
/// Stops at a length that runs past the end (or is a pointer).
pub fn label_starts(wire: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut at = Some(0);
    std::iter::from_fn(move || {
        let here = at?;
        let len = usize::from(*wire.get(here)?);
        at = match len {
            0 => None,
            1..=63 if here + 1 + len <= wire.len() => Some(here + 1 + len),
            _ => return None,
        };
        Some(here)
    })
}

/// The labels of the uncompressed wire name `wire`, the root's empty one left out. Stops at
/// a length that runs past the end (or is a pointer).
pub fn wire_labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    label_starts(wire).filter_map(|at| {
        let len = usize::from(wire[at]);
        (len > 0).then(|| &wire[at + 1..at + 1 + len])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wire_name_knows_its_labels_and_zones() {
        let wire = b"\x03web\x04prod\x03svc\x07cluster\x05local\x00";
        let starts: Vec<u8> = label_starts(wire).map(|at| at as u8).collect();
        assert_eq!(starts, [0, 4, 9, 13, 21, 27]);
        let name = WireName::new(wire, &starts);
        assert_eq!(name.label_count(), 6);
        assert_eq!(name.label(1), b"prod");
        assert_eq!(name.label(5), b"");
        assert_eq!(name.label(9), b"");
        assert!(name.is_in(b"\x07cluster\x05local\x00"));
        assert!(name.is_in(b"\x00"));
        assert!(name.is_in(wire));
        // A suffix that does not start at a label is not a zone of it.
        assert!(!name.is_in(b"\x05local\x00x"));
        assert!(!name.is_in(b"\x06uster\x05local\x00"));
        let labels: Vec<&[u8]> = wire_labels(wire).collect();
        assert_eq!(labels, [&b"web"[..], b"prod", b"svc", b"cluster", b"local"]);
        // A length that runs past the end ends the walk.
        assert_eq!(label_starts(b"\x03ab").count(), 0);
        assert_eq!(label_starts(b"\x01a\x09ab").collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn reverse_ip_reads_back_reverse_name() {
        for text in [
            "10.96.0.10",
            "0.0.0.0",
            "255.1.20.3",
            "fd00::1",
            "2001:db8::a:b",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(reverse_ip(&reverse_name(ip)), Some(ip), "{text}");
        }
        for bad in [
            "1.2.3.in-addr.arpa.",
            "1.2.3.4.5.in-addr.arpa.",
            "01.2.3.4.in-addr.arpa.",
            "256.2.3.4.in-addr.arpa.",
            "1.2.3.4.ip6.arpa.",
            "a.2.3.4.in-addr.arpa.",
            "1.2.3.4.example.org.",
        ] {
            assert_eq!(reverse_ip(&fqdn(bad).unwrap()), None, "{bad}");
        }
        let upper = Name::from_ascii("4.3.2.1.IN-ADDR.ARPA.").unwrap();
        assert_eq!(reverse_ip(&upper), Some("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("10.96.0.1".parse().unwrap()).to_ascii(),
            "1.0.96.10.in-addr.arpa."
        );
        assert_eq!(
            reverse_name("fd00::1".parse().unwrap()).to_ascii(),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."
        );
    }

    #[test]
    fn reverse_zones_split_on_label_boundaries() {
        let z = |s: &str, p| {
            reverse_zones(s.parse().unwrap(), p)
                .iter()
                .map(|n| n.to_ascii())
                .collect::<Vec<_>>()
        };
        assert_eq!(z("10.0.0.0", 24), ["0.0.10.in-addr.arpa."]);
        assert_eq!(z("10.96.0.0", 12).len(), 16);
        assert_eq!(z("10.96.0.0", 12)[0], "96.10.in-addr.arpa.");
        assert_eq!(z("10.96.0.0", 12)[15], "111.10.in-addr.arpa.");
        assert_eq!(
            z("10.0.0.0", 22),
            [
                "0.0.10.in-addr.arpa.",
                "1.0.10.in-addr.arpa.",
                "2.0.10.in-addr.arpa.",
                "3.0.10.in-addr.arpa."
            ]
        );
        assert_eq!(z("0.0.0.0", 0), ["in-addr.arpa."]);
        assert_eq!(z("fd00::", 8), ["d.f.ip6.arpa."]);
        assert_eq!(z("fd00::", 7).len(), 2);
    }

    #[test]
    fn dashes_round_trip() {
        for ip in ["10.0.0.1", "fd00::1", "2001:db8::a:b"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(undash(&dashed(ip)), Some(ip));
        }
        assert_eq!(undash("not-an-ip"), None);
        assert_eq!(undash("1-2-3"), None);
    }
}
