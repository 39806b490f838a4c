//! A tiny, valid OCI image layout written by hand (no network, no external tools).
//!
//! Layout: `oci-layout`, `index.json` (one manifest, `org.opencontainers.image.ref.name` = tag),
//! `blobs/sha256/<hex>` for the uncompressed tar layer
//! (`application/vnd.oci.image.layer.v1.tar`), the config and the manifest.
//! The tar is a deterministic ustar archive holding one file, `seed.txt`, whose content
//! includes the seed — so different seeds give different digests.

use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct OciImage {
    /// The OCI layout directory (`oci:<layout_dir>:<tag>` for skopeo).
    pub layout_dir: PathBuf,
    /// The ref name in `index.json`.
    pub tag: String,
    /// `sha256:<hex>` of the manifest — what a registry reports as the image digest.
    pub manifest_digest: String,
    /// `sha256:<hex>` of the config blob.
    pub config_digest: String,
    /// `sha256:<hex>` of the (uncompressed) layer blob; also its diff_id.
    pub layer_digest: String,
}

impl OciImage {
    /// `oci:<layout_dir>:<tag>` — the skopeo transport reference.
    pub fn skopeo_ref(&self) -> String {
        format!("oci:{}:{}", self.layout_dir.display(), self.tag)
    }
}

/// Writes the image layout into `dir` (created if missing) and returns its description.
pub fn write_oci_image(dir: &Path, seed: &str, tag: &str) -> OciImage {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).expect("create blobs dir");
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = sha256_hex(bytes);
        fs::write(blobs.join(&hex), bytes).expect("write blob");
        (format!("sha256:{hex}"), bytes.len())
    };

    let content = format!("regauth e2e fixture\nseed: {seed}\n");
    let layer = tar_one_file("seed.txt", content.as_bytes());
    let (layer_digest, layer_size) = put(&layer);

    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "history": [{ "created_by": format!("regauth e2e fixture {seed}") }],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let (config_digest, config_size) = put(&config);

    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let (manifest_digest, manifest_size) = put(&manifest);

    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).expect("index.json");
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");

    OciImage {
        layout_dir: dir.to_path_buf(),
        tag: tag.to_string(),
        manifest_digest,
        config_digest,
        layer_digest,
    }
}

/// A deterministic ustar archive with one regular file (mode 0644, uid/gid 0, mtime 0).
pub fn tar_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    tar_files(&[(name, content)])
}

/// A deterministic ustar archive of regular files (mode 0644, uid/gid 0, mtime 0), in the
/// given order. Names must be shorter than 100 bytes; parent directories get no entries of
/// their own (tar readers create them).
pub fn tar_files(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, content) in files {
        out.extend_from_slice(&ustar_header(name, content.len()));
        out.extend_from_slice(content);
        let pad = (512 - content.len() % 512) % 512;
        out.resize(out.len() + pad, 0);
    }
    out.resize(out.len() + 1024, 0); // end-of-archive marker
    out
}

fn ustar_header(name: &str, size: usize) -> [u8; 512] {
    assert!(name.len() < 100, "tar name too long: {name}");
    let mut h = [0u8; 512];
    let field = |h: &mut [u8; 512], off: usize, bytes: &[u8]| {
        h[off..off + bytes.len()].copy_from_slice(bytes);
    };
    field(&mut h, 0, name.as_bytes());
    field(&mut h, 100, b"0000644\0"); // mode
    field(&mut h, 108, b"0000000\0"); // uid
    field(&mut h, 116, b"0000000\0"); // gid
    field(&mut h, 124, format!("{:011o}\0", size).as_bytes()); // size
    field(&mut h, 136, b"00000000000\0"); // mtime
    field(&mut h, 148, b"        "); // checksum placeholder (spaces)
    h[156] = b'0'; // regular file
    field(&mut h, 257, b"ustar\0"); // magic
    field(&mut h, 263, b"00"); // version
    field(&mut h, 265, b"root");
    field(&mut h, 297, b"root");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    field(&mut h, 148, format!("{:06o}\0 ", sum).as_bytes());
    h
}

/// A root filesystem for `podman import`, `docker import` and `buildah add`: a tar holding
/// one file, `seed.txt`, whose content includes `seed`. Written to `path`.
pub fn write_rootfs_tar(path: &Path, seed: &str) {
    let content = format!("regauth e2e rootfs\nseed: {seed}\n");
    fs::write(path, tar_one_file("seed.txt", content.as_bytes())).expect("write rootfs tar");
}

/// An OCI image archive (`ctr images import`, `skopeo copy oci-archive:`): the layout that
/// [`write_oci_image`] writes into `layout_dir`, tarred into `archive`.
pub fn write_oci_archive(layout_dir: &Path, archive: &Path, seed: &str, tag: &str) -> OciImage {
    let image = write_oci_image(layout_dir, seed, tag);
    let mut names = vec!["oci-layout".to_string(), "index.json".to_string()];
    let mut blobs: Vec<String> = fs::read_dir(layout_dir.join("blobs").join("sha256"))
        .expect("read blobs dir")
        .map(|e| {
            format!(
                "blobs/sha256/{}",
                e.expect("dir entry").file_name().to_string_lossy()
            )
        })
        .collect();
    blobs.sort();
    names.extend(blobs);
    let contents: Vec<Vec<u8>> = names
        .iter()
        .map(|n| fs::read(layout_dir.join(n)).expect("read layout file"))
        .collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&contents)
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    fs::write(archive, tar_files(&files)).expect("write OCI archive");
    image
}

/// SHA-256 of `data`, lowercase hex (FIPS 180-4; small and dependency-free).
pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}
