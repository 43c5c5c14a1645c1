//! The domain XML Flotilla defines, and Flotilla's own facts in the domain's `<metadata>`
//! ([`Meta`]): enough to rebuild the backend's whole view from libvirt after a restart.

use flotilla_domain::Model;

/// The namespace of Flotilla's metadata element, and its prefix.
pub const NAMESPACE: &str = "https://flotilla.invalid/xmlns/instance/1";
pub const PREFIX: &str = "flotilla";

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
    /// The installation that created or adopted the domain (`None`: made before
    /// installations had ids).
    pub installation: Option<String>,
    /// The generation of the control plane's lease it was created under.
    pub lease_generation: Option<i64>,
}

impl Meta {
    /// The facts of installation `installation`'s VM of `model`.
    pub fn new(
        installation: &str,
        scale_set: &str,
        zone: &str,
        fault_domain: u32,
        model_version: u32,
        model: &Model,
        port: u16,
    ) -> Meta {
        Meta {
            installation: Some(installation.to_owned()),
            scale_set: scale_set.to_owned(),
            zone: zone.to_owned(),
            fault_domain,
            model_version,
            image: model.image.clone(),
            vcpus: model.vcpus,
            memory_mib: u64::from(model.memory_mib),
            port,
            deallocated: false,
            lease_generation: None,
        }
    }

    /// The metadata element, in Flotilla's namespace (for a domain's definition).
    pub fn to_xml(&self) -> String {
        format!(
            "<{PREFIX}:instance xmlns:{PREFIX}=\"{NAMESPACE}\">{}</{PREFIX}:instance>",
            self.fields(&format!("{PREFIX}:"))
        )
    }

    /// The metadata element without a namespace, as `virDomainSetMetadata` takes it (it
    /// puts the element in the namespace it is given).
    pub fn to_element(&self) -> String {
        format!("<instance>{}</instance>", self.fields(""))
    }

    fn fields(&self, prefix: &str) -> String {
        let installation = self
            .installation
            .as_deref()
            .map(|id| ("installation", escape(id)));
        let generation = self
            .lease_generation
            .map(|g| ("lease-generation", g.to_string()));
        installation
            .into_iter()
            .chain(generation)
            .chain([
                ("scale-set", escape(&self.scale_set)),
                ("zone", escape(&self.zone)),
                ("fault-domain", self.fault_domain.to_string()),
                ("model-version", self.model_version.to_string()),
                ("image", escape(&self.image)),
                ("vcpus", self.vcpus.to_string()),
                ("memory-mib", self.memory_mib.to_string()),
                ("port", self.port.to_string()),
                ("deallocated", self.deallocated.to_string()),
            ])
            .map(|(name, value)| format!("<{prefix}{name}>{value}</{prefix}{name}>"))
            .collect()
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
            installation: field(xml, "installation"),
            lease_generation: match field(xml, "lease-generation") {
                Some(g) => Some(g.parse().ok()?),
                None => None,
            },
        })
    }
}

/// What a domain runs on besides its [`Meta`]: disks, console, boot and network.
pub struct Devices<'a> {
    /// The OS disk (the instance's qcow2 overlay).
    pub disk: &'a str,
    /// The cloud-init seed ISO.
    pub seed: &'a str,
    /// The serial console's log file.
    pub console: &'a str,
    /// A kernel, initrd and command line to boot directly (else the disk boots).
    pub kernel: Option<(&'a str, &'a str, &'a str)>,
    /// The host address the application port is forwarded from.
    pub address: &'a str,
    pub app_port: u16,
    /// `kvm` only when configured and verified; `qemu` (software emulation) otherwise.
    pub accelerated: bool,
    /// The unix socket of the VM's metadata endpoint, forwarded into the guest as
    /// `10.0.2.100:80` (local hosts only), and whether QEMU takes `reconnect-ms` (9.2 on;
    /// older ones take `reconnect`, in seconds).
    pub metadata: Option<(&'a str, bool)>,
}

/// The QEMU namespace of `<qemu:commandline>`.
const QEMU_NAMESPACE: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// The persistent definition of domain `name` with `meta` (a redefinition repeats the
/// domain's `uuid`): software emulation unless acceleration is on, with a small
/// translation cache; the overlay as `vda`, the seed as read-only `vdb`; the serial
/// console appended to a log file; QEMU user networking with the application port
/// forwarded from `address:meta.port` (a fixed PCI slot, clear of libvirt's own devices);
/// power-off and crash end the domain, reboot restarts it.
pub fn domain(name: &str, uuid: Option<&str>, meta: &Meta, devices: &Devices) -> String {
    let boot = match devices.kernel {
        Some((kernel, initrd, cmdline)) => format!(
            "<kernel>{}</kernel><initrd>{}</initrd><cmdline>{}</cmdline>",
            escape(kernel),
            escape(initrd),
            escape(cmdline)
        ),
        None => "<boot dev='hd'/>".to_owned(),
    };
    let (kind, tcg) = if devices.accelerated {
        ("kvm", "")
    } else {
        ("qemu", "<tcg><tb-cache unit='MiB'>16</tb-cache></tcg>")
    };
    // `restrict=on` isolates the guest: it reaches neither the host (10.0.2.2 would be the
    // host's loopback: the control plane, the database) nor anything beyond; only the
    // forwards set here pass: the application port in, the metadata endpoint out (QEMU
    // connects to its socket, and reconnects every second while it is missing; `,,` is a
    // comma inside the option's value).
    let mut netdev = format!(
        "user,id=net0,restrict=on,hostfwd=tcp:{}:{}-:{}",
        devices.address, meta.port, devices.app_port
    );
    if let Some((socket, reconnect_ms)) = devices.metadata {
        let reconnect = if reconnect_ms {
            "reconnect-ms=1000"
        } else {
            "reconnect=1"
        };
        netdev.push_str(&format!(
            ",guestfwd=tcp:{}:80-unix:{},,{reconnect}",
            super::metadata::ADDRESS,
            socket.replace(',', ",,,,")
        ));
    }
    format!(
        "<domain type='{kind}' xmlns:qemu='{QEMU_NAMESPACE}'>\
           <name>{name}</name>{uuid}\
           <memory unit='MiB'>{memory}</memory>\
           <vcpu>{vcpus}</vcpu>\
           <os><type arch='x86_64' machine='pc'>hvm</type>{boot}</os>\
           <features><acpi/>{tcg}</features>\
           <metadata>{metadata}</metadata>\
           <on_poweroff>destroy</on_poweroff>\
           <on_reboot>restart</on_reboot>\
           <on_crash>destroy</on_crash>\
           <devices>\
             <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
               <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>\
             <disk type='file' device='disk'><driver name='qemu' type='raw'/>\
               <source file='{seed}'/><target dev='vdb' bus='virtio'/><readonly/></disk>\
             <serial type='file'><source path='{console}' append='on'/>\
               <target port='0'/></serial>\
             <memballoon model='none'/>\
           </devices>\
           <qemu:commandline>\
             <qemu:arg value='-netdev'/><qemu:arg value='{netdev}'/>\
             <qemu:arg value='-device'/>\
             <qemu:arg value='virtio-net-pci,netdev=net0,bus=pci.0,addr=0x1f'/>\
           </qemu:commandline>\
         </domain>",
        name = escape(name),
        uuid = uuid
            .map(|u| format!("<uuid>{}</uuid>", escape(u)))
            .unwrap_or_default(),
        memory = meta.memory_mib,
        vcpus = meta.vcpus,
        metadata = meta.to_xml(),
        disk = escape(devices.disk),
        seed = escape(devices.seed),
        console = escape(devices.console),
        netdev = escape(&netdev),
    )
}

/// Definition `definition` (as libvirt answers it) with its metadata replaced by `meta`;
/// `None` when it has no metadata element.
pub fn with_metadata(definition: &str, meta: &Meta) -> Option<String> {
    let start = definition.find("<metadata>")? + "<metadata>".len();
    let end = start + definition[start..].find("</metadata>")?;
    Some(format!(
        "{}{}{}",
        &definition[..start],
        meta.to_xml(),
        &definition[end..]
    ))
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

pub fn escape(text: &str) -> String {
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
            installation: Some("5f0c".into()),
            lease_generation: Some(12),
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
        assert_eq!(Meta::parse(&plain), Some(m.clone()));
        assert_eq!(Meta::parse(&m.to_element()), Some(m));
        assert_eq!(Meta::parse("<instance><zone>1</zone></instance>"), None);
        // Domains made before installations (or replicas) had ids carry none.
        let legacy = Meta {
            installation: None,
            lease_generation: None,
            ..meta()
        };
        assert!(!legacy.to_xml().contains("installation"));
        assert!(!legacy.to_xml().contains("lease-generation"));
        let generation = "<flotilla:lease-generation>12</flotilla:lease-generation>";
        assert!(meta().to_xml().contains(generation));
        assert_eq!(Meta::parse(&legacy.to_xml()), Some(legacy));
    }

    fn devices(kernel: bool) -> Devices<'static> {
        Devices {
            disk: "/pool/web_0.overlay",
            seed: "/state/web_0/seed.iso",
            console: "/state/web_0/console.log",
            kernel: kernel.then_some(("/pool/tiny.vmlinuz", "/pool/tiny.initrd", "console=ttyS0")),
            address: "127.0.0.1",
            app_port: 80,
            accelerated: false,
            metadata: None,
        }
    }

    #[test]
    fn the_domain_asks_for_emulation_and_carries_the_metadata() {
        let xml = domain(
            "web_0",
            Some("5a3b767a-1b51-40d6-8366-47845bc94580"),
            &meta(),
            &devices(false),
        );
        assert!(xml.starts_with("<domain type='qemu' xmlns:qemu="), "{xml}");
        assert!(xml.contains("<tb-cache unit='MiB'>16</tb-cache>"));
        assert!(xml.contains("<boot dev='hd'/>"));
        assert!(xml.contains("<source file='/pool/web_0.overlay'/><target dev='vda'"));
        assert!(xml.contains(
            "<source file='/state/web_0/seed.iso'/><target dev='vdb' bus='virtio'/><readonly/>"
        ));
        assert!(xml.contains("<source path='/state/web_0/console.log' append='on'/>"));
        assert!(
            xml.contains("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:20001-:80"),
            "{xml}"
        );
        assert!(!xml.contains("guestfwd"), "no endpoint asked: {xml}");
        assert!(
            xml.contains("<name>web_0</name><uuid>5a3b767a-1b51-40d6-8366-47845bc94580</uuid>")
        );
        assert!(xml.contains("<memory unit='MiB'>2048</memory>"));
        assert!(xml.contains("<vcpu>2</vcpu>"));
        assert!(xml.contains("web &amp; api"));
        assert_eq!(Meta::parse(&xml), Some(meta()));
    }

    #[test]
    fn a_redefinition_keeps_the_devices_and_replaces_the_metadata() {
        let xml = domain("web_0", None, &meta(), &devices(true));
        let changed = Meta {
            deallocated: false,
            ..meta()
        };
        let redefined = with_metadata(&xml, &changed).unwrap();
        assert_eq!(Meta::parse(&redefined), Some(changed));
        assert_eq!(
            redefined.replace(&meta_xml(false), ""),
            xml.replace(&meta_xml(true), "")
        );
        assert_eq!(with_metadata("<domain/>", &meta()), None);
    }

    fn meta_xml(deallocated: bool) -> String {
        Meta {
            deallocated,
            ..meta()
        }
        .to_xml()
    }

    #[test]
    fn a_kernel_in_the_pool_boots_directly_and_acceleration_is_asked_for_explicitly() {
        let xml = domain("web_0", None, &meta(), &devices(true));
        assert!(xml.contains(
            "<kernel>/pool/tiny.vmlinuz</kernel><initrd>/pool/tiny.initrd</initrd><cmdline>console=ttyS0</cmdline>"
        ));
        assert!(!xml.contains("<boot"));
        let accelerated = domain(
            "web_0",
            None,
            &meta(),
            &Devices {
                accelerated: true,
                ..devices(false)
            },
        );
        assert!(accelerated.starts_with("<domain type='kvm'"));
        assert!(!accelerated.contains("tb-cache"));
    }

    #[test]
    fn the_metadata_endpoint_is_forwarded_out_to_its_socket() {
        let with = |reconnect_ms| {
            domain(
                "web_0",
                None,
                &meta(),
                &Devices {
                    metadata: Some(("/state/meta,data/web_0.sock", reconnect_ms)),
                    ..devices(false)
                },
            )
        };
        assert!(
            with(true).contains(
                "restrict=on,hostfwd=tcp:127.0.0.1:20001-:80,guestfwd=tcp:10.0.2.100:80-unix:/state/meta,,,,data/web_0.sock,,reconnect-ms=1000'"
            ),
            "{}",
            with(true)
        );
        assert!(with(false).contains("web_0.sock,,reconnect=1'"));
    }
}
