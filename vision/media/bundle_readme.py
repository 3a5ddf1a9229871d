"""The README.md of an evidence bundle (`vision/media/bundle.py`), in Chinese and English, with a verification recipe
that needs only `openssl` (3.0 or later, for `-rawin`) and `sha256sum`. `RECIPE_START`/`RECIPE_END` delimit the
recipe, so a test can run exactly what an inspector reads."""

from __future__ import annotations

RECIPE_START = "```sh"
RECIPE_END = "```"

RECIPE = """openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin \\
  -in evidence/manifest.json -sigfile evidence/manifest.sig
sha256sum -c SHA256SUMS
for h in $(cut -d' ' -f1 SHA256SUMS); do
  grep -q "\\"$h\\"" evidence/manifest.json || { echo "NOT IN MANIFEST: $h"; exit 1; }; done
m=$(sha256sum evidence/manifest.json | cut -d' ' -f1)
grep -q "\\"manifest_sha256\\":\\"$m\\"" chain.jsonl && echo "manifest $m: in chain.jsonl"
"""

TEMPLATE = """# 执法证据包 / Evidence bundle

事件 Incident: `{incident_id}` · 摄像头 Camera: `{camera_id}` · 规则 Rule: `{rule}`
开始 Started: {started_at} · 结束 Ended: {ended_at}
签名密钥 Signing key id: `{key_id}` · 证据链 Chain: `{chain}` 序号 seq {seq}

## 中文

本压缩包是一起安全事件的完整证据：视频片段、原始及标注快照（`evidence/`）、证据清单 `evidence/manifest.json`
（列出每个文件的 SHA-256）、清单的 Ed25519 签名 `evidence/manifest.sig`、公钥副本 `public-key.pem`，以及本事件在
防篡改证据链中的前后条目 `chain.jsonl`（每条记录前一条的哈希并单独签名，
删除、调换或替换任何一起事件的证据都会使链断开）。

核验时请使用运营单位公开发布的公钥（与 `public-key.pem` 比对，密钥编号为上面的 key id），不要只信任包内副本。
在只有本压缩包和公钥的电脑上即可离线核验：

1. 用 safewatch：`safewatch evidence verify 本文件.zip --public-key 公钥.pem`，退出码为 0 表示全部通过。
2. 只用 openssl 和 sha256sum（在解压目录中执行下面的命令；把 `public-key.pem` 换成您自己保存的公钥文件更稳妥）。
   第一行应输出 `Signature Verified Successfully`（签名有效），第二行每个文件都应为 `OK`（文件未被改动），第三行
   确认这些哈希值都写在已签名的清单里，最后两行确认清单被记录在证据链中。

## English

This archive is the complete evidence of one safety incident: the video clips and the raw and annotated snapshots
(`evidence/`), the evidence manifest `evidence/manifest.json` (the SHA-256 of every file), its Ed25519 signature
`evidence/manifest.sig`, a copy of the public key `public-key.pem`, and the entries around this incident in the
tamper-evident evidence chain `chain.jsonl` (each entry names the hash of the one before and is signed on its own;
removing, reordering or replacing any incident's evidence breaks the chain).

Verify with the public key the operator published (compare it with `public-key.pem`; its key id is above), not only
with the copy in this archive. A computer holding just this archive and the key can verify it offline:

1. With safewatch: `safewatch evidence verify THIS.zip --public-key KEY.pem`; exit status 0 means everything holds.
2. With only openssl and sha256sum, in the folder the archive was unpacked to (better: replace `public-key.pem` with
   your own copy of the key). The first line must print `Signature Verified Successfully` (the signature holds), the
   second `OK` for every file (no file changed), the third checks that those hashes are the ones in the signed
   manifest, the last two that the manifest is the one recorded in the chain.

{start}
{recipe}{end}
"""


def render(**fields: object) -> str:
    return TEMPLATE.format(start=RECIPE_START, recipe=RECIPE, end=RECIPE_END, **fields)
