//! The domain XML Flotilla defines, and Flotilla's own facts in the domain's `<metadata>`
//! ([`Meta`]): enough to rebuild the backend's whole view from libvirt after a restart.

use flotilla_domain::Model;

/// The namespace of Flotilla's metadata element.
pub const NAMESPACE: &str = "https://flotilla.invalid/xmlns/instance/1";

/// What Flotilla keeps in a domain's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub scale_set: String,
    pub zone: String,
    pub fault_domain: u32,
    pub model_version: u32,
    pub image: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// The host port forwarded to the application port.
    pub port: u16,
    /// Stopped with its host reservation released.
    pub deallocated: bool,
}

impl Meta {
    /// The facts of a VM of `model`.
    pub fn new(
        scale_set: &str,
        zone: &str,
        fault_domain: u32,
        model_version: u32,
        model: &Model,
        port: u16,
    ) -> Meta {
        Meta {
            scale_set: scale_set.to_owned(),
            zone: zone.to_owned(),
            fault_domain,
            model_version,
            image: model.image.clone(),
            vcpus: model.vcpus,
            memory_mib: u64::from(model.memory_mib),
            port,
            deallocated: false,
        }
    }

    /// The metadata element.
    pub fn to_xml(&self) -> String {
        let fields = [
            ("scale-set", escape(&self.scale_set)),
            ("zone", escape(&self.zone)),
            ("fault-domain", self.fault_domain.to_string()),
            ("model-version", self.model_version.to_string()),
            ("image", escape(&self.image)),
            ("vcpus", self.vcpus.to_string()),
            ("memory-mib", self.memory_mib.to_string()),
            ("port", self.port.to_string()),
            ("deallocated", self.deallocated.to_string()),
        ];
        let body: String = fields
            .iter()
            .map(|(name, value)| format!("<flotilla:{name}>{value}</flotilla:{name}>"))
            .collect();
        format!("<flotilla:instance xmlns:flotilla=\"{NAMESPACE}\">{body}</flotilla:instance>")
    }

    /// Reads the metadata element back (libvirt may rewrite its prefixes); `None` when a
    /// field is missing or malformed.
    pub fn parse(xml: &str) -> Option<Meta> {
        Some(Meta {
            scale_set: field(xml, "scale-set")?,
            zone: field(xml, "zone")?,
            fault_domain: field(xml, "fault-domain")?.parse().ok()?,
            model_version: field(xml, "model-version")?.parse().ok()?,
            image: field(xml, "image")?,
            vcpus: field(xml, "vcpus")?.parse().ok()?,
            memory_mib: field(xml, "memory-mib")?.parse().ok()?,
            port: field(xml, "port")?.parse().ok()?,
            deallocated: field(xml, "deallocated")?.parse().ok()?,
        })
    }
}

/// The persistent definition of domain `name` with `meta` (a redefinition repeats the
/// domain's `uuid`): software emulation (hardware acceleration is not assumed), power-off
/// and crash end the domain, reboot restarts it.
pub fn domain(name: &str, uuid: Option<&str>, meta: &Meta) -> String {
    format!(
        "<domain type='qemu'>\
           <name>{name}</name>{uuid}\
           <memory unit='MiB'>{memory}</memory>\
           <vcpu>{vcpus}</vcpu>\
           <os><type arch='x86_64'>hvm</type></os>\
           <metadata>{metadata}</metadata>\
           <on_poweroff>destroy</on_poweroff>\
           <on_reboot>restart</on_reboot>\
           <on_crash>destroy</on_crash>\
         </domain>",
        name = escape(name),
        uuid = uuid
            .map(|u| format!("<uuid>{}</uuid>", escape(u)))
            .unwrap_or_default(),
        memory = meta.memory_mib,
        vcpus = meta.vcpus,
        metadata = meta.to_xml(),
    )
}

/// The text of the element with local name `name` (any prefix).
fn field(xml: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = xml[from..].find(&format!("{name}>")) {
        let start = from + at;
        let end_of_open = start + name.len() + 1;
        let before = xml[..start].chars().next_back();
        let opening = match before {
            Some('<') => true,
            Some(':') => {
                let open = xml[..start].rfind('<')?;
                !xml[open..start].starts_with("</")
                    && xml[open + 1..start - 1]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            }
            _ => false,
        };
        if opening {
            let close = xml[end_of_open..].find('<')?;
            return Some(unescape(&xml[end_of_open..end_of_open + close]));
        }
        from = end_of_open;
    }
    None
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            scale_set: "web & api".into(),
            zone: "1".into(),
            fault_domain: 2,
            model_version: 7,
            image: "debian-12".into(),
            vcpus: 2,
            memory_mib: 2048,
            port: 20_001,
            deallocated: true,
        }
    }

    #[test]
    fn metadata_reads_back_whatever_the_prefix() {
        let m = meta();
        assert_eq!(Meta::parse(&m.to_xml()), Some(m.clone()));
        // As libvirt may answer it: the namespace as default, no prefixes.
        let plain = m
            .to_xml()
            .replace("flotilla:", "")
            .replace("xmlns:flotilla", "xmlns");
        assert_eq!(Meta::parse(&plain), Some(m));
        assert_eq!(Meta::parse("<instance><zone>1</zone></instance>"), None);
    }

    #[test]
    fn the_domain_asks_for_emulation_and_carries_the_metadata() {
        let xml = domain(
            "web_0",
            Some("5a3b767a-1b51-40d6-8366-47845bc94580"),
            &meta(),
        );
        assert!(xml.starts_with("<domain type='qemu'>"), "{xml}");
        assert!(
            xml.contains("<name>web_0</name><uuid>5a3b767a-1b51-40d6-8366-47845bc94580</uuid>")
        );
        assert!(xml.contains("<memory unit='MiB'>2048</memory>"));
        assert!(xml.contains("<vcpu>2</vcpu>"));
        assert!(xml.contains("web &amp; api"));
        assert_eq!(Meta::parse(&xml), Some(meta()));
    }
}
