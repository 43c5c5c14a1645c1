//! An instance's storage: its OS disk, a qcow2 overlay on its model's base image in the
//! host's storage pool; its cloud-init NoCloud seed (a `cidata` ISO written by [`super::iso`])
//! and its serial console log, both in the backend's state directory.
//!
//! In a pool, an image `NAME` is the volume `NAME.qcow2`; when the volumes `NAME.vmlinuz`
//! and `NAME.initrd` sit beside it the guest boots that kernel directly (images without a
//! boot loader, like the tiny test guest). An instance's overlay is the volume
//! `ID.overlay`, so overlays are never mistaken for images.

use std::path::{Path, PathBuf};

use super::ffi::{Pool, VirtError, Vol};

/// The volume name of image `image`'s base.
pub fn base_volume(image: &str) -> String {
    format!("{image}.qcow2")
}

/// The images a pool offers: its `*.qcow2` volumes.
pub fn images_in(volumes: &[Vol]) -> Vec<String> {
    let mut images: Vec<String> = volumes
        .iter()
        .filter_map(|v| v.name().strip_suffix(".qcow2").map(str::to_owned))
        .collect();
    images.sort();
    images
}

/// The volume name of instance `id`'s OS disk.
pub fn overlay_volume(id: &str) -> String {
    format!("{id}.overlay")
}

/// How a guest of an image boots.
pub struct Boot {
    /// The base image's path (the overlay's backing file).
    pub base: String,
    pub base_bytes: u64,
    /// A kernel and an initrd to boot directly, when the pool has them.
    pub kernel: Option<(String, String)>,
}

/// Finds image `image` in `pool`; `None` when its base volume is missing.
pub fn boot_of(pool: &Pool, image: &str) -> Result<Option<Boot>, VirtError> {
    let Some(base) = pool.volume(&base_volume(image))? else {
        return Ok(None);
    };
    let kernel = match (
        pool.volume(&format!("{image}.vmlinuz"))?,
        pool.volume(&format!("{image}.initrd"))?,
    ) {
        (Some(kernel), Some(initrd)) => Some((kernel.path()?, initrd.path()?)),
        _ => None,
    };
    Ok(Some(Boot {
        base: base.path()?,
        base_bytes: base.capacity()?,
        kernel,
    }))
}

/// The overlay volume's XML: a qcow2 of `bytes` backed by `base`.
pub fn overlay_xml(id: &str, bytes: u64, base: &str) -> String {
    format!(
        "<volume><name>{name}</name><capacity unit='bytes'>{bytes}</capacity>\
           <target><format type='qcow2'/></target>\
           <backingStore><path>{base}</path><format type='qcow2'/></backingStore>\
         </volume>",
        name = super::xml::escape(&overlay_volume(id)),
        base = super::xml::escape(base),
    )
}

/// Where an instance's seed and console log live.
pub struct InstanceFiles {
    pub dir: PathBuf,
}

impl InstanceFiles {
    pub fn new(state_dir: &Path, id: &str) -> InstanceFiles {
        InstanceFiles {
            dir: state_dir.join(id),
        }
    }

    pub fn seed(&self) -> PathBuf {
        self.dir.join("seed.iso")
    }

    pub fn console(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// Writes the NoCloud seed: `meta-data` naming the instance, `user-data` as given (an
    /// empty cloud-config without). The user data is a secret: the seed is readable by its
    /// owner and `group` (QEMU's) only; the directory lets QEMU through without listing it.
    pub fn write_seed(
        &self,
        id: &str,
        user_data: Option<&str>,
        group: Option<u32>,
    ) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let meta = format!("instance-id: {id}\nlocal-hostname: {}\n", hostname(id));
        let user = user_data.unwrap_or("#cloud-config\n{}\n");
        let seed = self.seed();
        std::fs::write(
            &seed,
            super::iso::image(
                "cidata",
                &[
                    ("meta-data", meta.as_bytes()),
                    ("user-data", user.as_bytes()),
                ],
            ),
        )
        .map_err(|e| format!("{}: {e}", seed.display()))?;
        set_mode(&self.dir, 0o711)?;
        set_mode(&seed, 0o640)?;
        if let Some(gid) = group
            && let Err(e) = std::os::unix::fs::chown(&seed, None, Some(gid))
        {
            // Not root (a session daemon, whose QEMU runs as this user): the owner reads it.
            tracing::debug!(seed = %seed.display(), error = %e, "the seed keeps its group");
        }
        Ok(())
    }

    /// The console log's last `limit` bytes (empty before the first boot).
    pub fn console_tail(&self, limit: u64) -> std::io::Result<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = match std::fs::File::open(self.console()) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(limit)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).replace('\r', ""))
    }

    /// Removes the seed and the console log.
    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A host name from an instance id (`web_3` → `web-3`).
fn hostname(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The group QEMU runs with on this machine, to let it read the seeds: `libvirt-qemu`
/// (Debian's), else `kvm`, else `qemu`, looked up in `/etc/group`; `None` when none exists.
pub fn qemu_group() -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    ["libvirt-qemu", "kvm", "qemu"].iter().find_map(|wanted| {
        groups.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?;
            (name == *wanted).then(|| gid.parse().ok()).flatten()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_a_cidata_iso_naming_the_instance() {
        let dir = tempfile::tempdir().unwrap();
        let files = InstanceFiles::new(dir.path(), "web_3");
        files
            .write_seed("web_3", Some("#cloud-config\nhostname: x\n"), qemu_group())
            .unwrap();
        // The user data is a secret: owner and QEMU's group read it, nobody else lists or
        // reads anything.
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let seed = std::fs::metadata(files.seed()).unwrap();
        assert_eq!(seed.permissions().mode() & 0o777, 0o640);
        if let (Some(gid), 0) = (qemu_group(), std::fs::metadata(dir.path()).unwrap().uid()) {
            assert_eq!(seed.gid(), gid, "QEMU's group reads the seed");
        }
        assert_eq!(
            std::fs::metadata(&files.dir).unwrap().permissions().mode() & 0o777,
            0o711
        );
        let iso = std::fs::read(files.seed()).unwrap();
        // The primary volume descriptor at sector 16 carries the volume id.
        assert_eq!(&iso[0x8001..0x8006], b"CD001");
        assert_eq!(&iso[0x8028..0x802e], b"cidata");
        let text = String::from_utf8_lossy(&iso);
        assert!(text.contains("instance-id: web_3\nlocal-hostname: web-3"));
        assert!(text.contains("hostname: x"));
        assert_eq!(files.console_tail(100).unwrap(), "");
        files.remove().unwrap();
        assert!(!files.dir.exists());
    }

    #[test]
    fn overlays_are_not_images() {
        assert_eq!(base_volume("tiny"), "tiny.qcow2");
        assert_eq!(overlay_volume("web_0"), "web_0.overlay");
        let xml = overlay_xml("web_0", 1 << 30, "/pool/tiny.qcow2");
        assert!(xml.contains("<name>web_0.overlay</name>"), "{xml}");
        assert!(xml.contains("<backingStore><path>/pool/tiny.qcow2</path>"));
    }
}
