//! A cloud-init NoCloud seed as an ISO 9660 image with Joliet names, written in memory:
//! volume id `cidata`, a root directory of small files (`meta-data`, `user-data`). What
//! `genisoimage -volid cidata -joliet` makes, without a process per VM.
//!
//! Layout, in 2,048-byte sectors: 16 empty, the primary volume descriptor (ISO 9660 names,
//! `META_DAT.;1`), the Joliet supplementary descriptor (UCS-2 names, `meta-data`), the
//! terminator, the path tables of both (one root entry each, little- then big-endian), the
//! root directory of both, then the files' data (shared by both trees).

const SECTOR: usize = 2048;
/// The first sector after the descriptors, path tables and the two root directories.
const PVD: usize = 16;
const SVD: usize = 17;
const TERMINATOR: usize = 18;
const PATH_TABLES: usize = 19; // L and M of the primary, then L and M of Joliet: 19–22.
const PRIMARY_ROOT: usize = 23;
const JOLIET_ROOT: usize = 24;
const FIRST_FILE: usize = 25;
/// One root entry: name length, extended attributes, extent, parent, name (0), padding.
const PATH_TABLE_BYTES: u32 = 10;

/// The image of volume `label` holding `files` (name, contents), sorted by name.
pub fn image(label: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut files: Vec<(&str, &[u8])> = files.to_vec();
    files.sort_by(|a, b| a.0.cmp(b.0));
    let mut extents = Vec::new();
    let mut next = FIRST_FILE;
    for (_, data) in &files {
        extents.push(next);
        next += data.len().div_ceil(SECTOR).max(1);
    }
    let total = next;
    let mut iso = vec![0u8; total * SECTOR];

    let primary_names: Vec<Vec<u8>> = files.iter().map(|(n, _)| short_name(n)).collect();
    let joliet_names: Vec<Vec<u8>> = files.iter().map(|(n, _)| ucs2(n)).collect();
    let primary_root = directory(PRIMARY_ROOT, &primary_names, &files, &extents);
    let joliet_root = directory(JOLIET_ROOT, &joliet_names, &files, &extents);
    put(&mut iso, PRIMARY_ROOT * SECTOR, &primary_root);
    put(&mut iso, JOLIET_ROOT * SECTOR, &joliet_root);

    // As genisoimage does, the label as given (cloud-init looks for `cidata` in any case).
    let label_ascii = padded(label.as_bytes(), 32, b" ");
    let label_ucs2 = padded(&ucs2(label), 32, &[0, b' ']);
    put(
        &mut iso,
        PVD * SECTOR,
        &descriptor(1, &label_ascii, total, PATH_TABLES, PRIMARY_ROOT),
    );
    let mut joliet = descriptor(2, &label_ucs2, total, PATH_TABLES + 2, JOLIET_ROOT);
    joliet[88..91].copy_from_slice(b"%/E"); // UCS-2 level 3
    put(&mut iso, SVD * SECTOR, &joliet);
    put(
        &mut iso,
        TERMINATOR * SECTOR,
        &[255, b'C', b'D', b'0', b'0', b'1', 1],
    );

    for (i, root) in [PRIMARY_ROOT, PRIMARY_ROOT, JOLIET_ROOT, JOLIET_ROOT]
        .into_iter()
        .enumerate()
    {
        let big_endian = i % 2 == 1;
        let extent = if big_endian {
            (root as u32).to_be_bytes()
        } else {
            (root as u32).to_le_bytes()
        };
        let parent = if big_endian {
            1u16.to_be_bytes()
        } else {
            1u16.to_le_bytes()
        };
        let mut entry = vec![1, 0];
        entry.extend_from_slice(&extent);
        entry.extend_from_slice(&parent);
        entry.extend_from_slice(&[0, 0]);
        put(&mut iso, (PATH_TABLES + i) * SECTOR, &entry);
    }
    for ((_, data), extent) in files.iter().zip(&extents) {
        put(&mut iso, extent * SECTOR, data);
    }
    iso
}

/// A volume descriptor: `kind` 1 (primary) or 2 (supplementary).
fn descriptor(kind: u8, label: &[u8], sectors: usize, path_tables: usize, root: usize) -> Vec<u8> {
    let mut d = vec![0u8; SECTOR];
    d[0] = kind;
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    let blank: &[u8] = if kind == 1 { b" " } else { &[0, b' '] };
    d[8..40].copy_from_slice(&padded(&[], 32, blank));
    d[40..72].copy_from_slice(label);
    d[80..88].copy_from_slice(&both32(sectors as u32));
    d[120..124].copy_from_slice(&both16(1));
    d[124..128].copy_from_slice(&both16(1));
    d[128..132].copy_from_slice(&both16(SECTOR as u16));
    d[132..140].copy_from_slice(&both32(PATH_TABLE_BYTES));
    d[140..144].copy_from_slice(&(path_tables as u32).to_le_bytes());
    d[148..152].copy_from_slice(&(path_tables as u32 + 1).to_be_bytes());
    d[156..190].copy_from_slice(&record(root, SECTOR, true, &[0]));
    // Volume set, publisher, preparer, application; copyright, abstract, bibliography.
    d[190..702].copy_from_slice(&padded(&[], 512, blank));
    d[702..813].copy_from_slice(&padded(&[], 111, b" "));
    // Creation, modification, expiration, effective dates: "not specified".
    for at in [813, 830, 847, 864] {
        d[at..at + 16].copy_from_slice(b"0000000000000000");
    }
    d[881] = 1;
    d
}

/// A root directory sector: `.`, `..`, then one record per file.
fn directory(at: usize, names: &[Vec<u8>], files: &[(&str, &[u8])], extents: &[usize]) -> Vec<u8> {
    let mut dir = record(at, SECTOR, true, &[0]);
    dir.extend(record(at, SECTOR, true, &[1]));
    for ((name, (_, data)), extent) in names.iter().zip(files).zip(extents) {
        dir.extend(record(*extent, data.len(), false, name));
    }
    dir
}

/// A directory record.
fn record(extent: usize, bytes: usize, is_dir: bool, name: &[u8]) -> Vec<u8> {
    let length = 33 + name.len() + (name.len() + 1) % 2;
    let mut r = vec![0u8; length];
    r[0] = length as u8;
    r[2..10].copy_from_slice(&both32(extent as u32));
    r[10..18].copy_from_slice(&both32(bytes as u32));
    // Recorded 2000-01-01 00:00:00 UTC.
    r[18..25].copy_from_slice(&[100, 1, 1, 0, 0, 0, 0]);
    r[25] = if is_dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both16(1));
    r[32] = name.len() as u8;
    r[33..33 + name.len()].copy_from_slice(name);
    r
}

/// An ISO 9660 level-1 name: `meta-data` → `META_DAT.;1`.
fn short_name(name: &str) -> Vec<u8> {
    let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .take(n)
            .collect()
    };
    format!("{}.{};1", clean(stem, 8), clean(ext, 3)).into_bytes()
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn padded(bytes: &[u8], len: usize, fill: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    while out.len() < len {
        out.extend_from_slice(fill);
    }
    out.truncate(len);
    out
}

fn both16(value: u16) -> [u8; 4] {
    let (le, be) = (value.to_le_bytes(), value.to_be_bytes());
    [le[0], le[1], be[0], be[1]]
}

fn both32(value: u32) -> [u8; 8] {
    let (le, be) = (value.to_le_bytes(), value.to_be_bytes());
    [le[0], le[1], le[2], le[3], be[0], be[1], be[2], be[3]]
}

fn put(iso: &mut [u8], at: usize, bytes: &[u8]) {
    iso[at..at + bytes.len()].copy_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_what_iso_9660_and_joliet_readers_expect() {
        let user = vec![b'x'; 3000];
        let iso = image("cidata", &[("user-data", &user), ("meta-data", b"id: 1\n")]);
        let sector = |n: usize| &iso[n * SECTOR..(n + 1) * SECTOR];
        assert_eq!(iso.len(), (FIRST_FILE + 1 + 2) * SECTOR);
        assert_eq!(&sector(16)[..7], b"\x01CD001\x01");
        assert_eq!(&sector(16)[40..46], b"cidata");
        assert_eq!(&sector(17)[..7], b"\x02CD001\x01");
        assert_eq!(&sector(17)[40..52], &ucs2("cidata")[..]);
        assert_eq!(&sector(17)[88..91], b"%/E");
        assert_eq!(&sector(18)[..6], b"\xffCD001");
        assert_eq!(&sector(16)[80..88], &both32(28));
        // The Joliet root lists the files sorted, with their extents and sizes.
        let root = sector(JOLIET_ROOT);
        let mut at = 0;
        let mut seen = Vec::new();
        while root[at] != 0 {
            let len = root[at] as usize;
            let name_len = root[at + 32] as usize;
            let name = &root[at + 33..at + 33 + name_len];
            let extent = u32::from_le_bytes(root[at + 2..at + 6].try_into().unwrap());
            let size = u32::from_le_bytes(root[at + 10..at + 14].try_into().unwrap());
            seen.push((name.to_vec(), extent, size));
            at += len;
        }
        assert_eq!(
            seen,
            [
                (vec![0], JOLIET_ROOT as u32, SECTOR as u32),
                (vec![1], JOLIET_ROOT as u32, SECTOR as u32),
                (ucs2("meta-data"), 25, 6),
                (ucs2("user-data"), 26, 3000),
            ]
        );
        assert_eq!(&sector(25)[..6], b"id: 1\n");
        assert_eq!(&iso[26 * SECTOR..26 * SECTOR + 3000], &user[..]);
        assert_eq!(short_name("meta-data"), b"META_DAT.;1");
    }

    /// genisoimage's reader lists and extracts both files by their Joliet names, and blkid
    /// (what cloud-init looks the seed up with) reads the label.
    #[test]
    fn isoinfo_and_blkid_read_it_back() {
        let iso = image("cidata", &[("meta-data", b"a\n"), ("user-data", b"b\n")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.iso");
        std::fs::write(&path, iso).unwrap();
        let run = |program: &str, args: &[&str]| {
            let out = std::process::Command::new(program)
                .args(args)
                .arg(&path)
                .output()
                .unwrap_or_else(|e| {
                    panic!("{program} (Debian: genisoimage, util-linux; make libvirt-deps): {e}")
                });
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let listing = run("isoinfo", &["-J", "-l", "-i"]);
        assert!(listing.contains("meta-data"), "{listing}");
        assert!(listing.contains("user-data"), "{listing}");
        assert_eq!(run("isoinfo", &["-J", "-x", "/user-data", "-i"]), "b\n");
        assert_eq!(
            run("blkid", &["-p", "-o", "value", "-s", "LABEL"]).trim(),
            "cidata"
        );
        assert_eq!(
            run("blkid", &["-p", "-o", "value", "-s", "TYPE"]).trim(),
            "iso9660"
        );
    }
}
