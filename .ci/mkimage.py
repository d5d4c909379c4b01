#!/usr/bin/env python3
"""A one-layer `FROM scratch` image from a directory, written as a docker-archive (`docker save`
format) that `ctr images import` reads. No daemon, no registry. Used for the pod sandbox (pause)
image of the real node (.ci/node-env.sh); files are owned by root, mtimes are zero (reproducible)."""
import argparse
import hashlib
import io
import json
import os
import tarfile

p = argparse.ArgumentParser()
p.add_argument('--rootfs', required=True)
p.add_argument('--tag', required=True)
p.add_argument('--out', required=True)
p.add_argument('--entrypoint', default=None, help='JSON list')
p.add_argument('--user', default='')
a = p.parse_args()


def reset(ti):
    ti.mtime = 0
    ti.uname = ti.gname = ''
    ti.uid = ti.gid = 0
    return ti


buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
    for root, dirs, files in os.walk(a.rootfs):
        dirs.sort()
        for n in sorted(dirs) + sorted(files):
            full = os.path.join(root, n)
            t.add(full, arcname=os.path.relpath(full, a.rootfs), recursive=False, filter=reset)
layer = buf.getvalue()
diff_id = 'sha256:' + hashlib.sha256(layer).hexdigest()
cfg = {'architecture': 'amd64', 'os': 'linux', 'created': '1970-01-01T00:00:00Z',
       'config': {'Env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], 'WorkingDir': '/'},
       'rootfs': {'type': 'layers', 'diff_ids': [diff_id]},
       'history': [{'created': '1970-01-01T00:00:00Z', 'created_by': 'mkimage.py'}]}
if a.entrypoint:
    cfg['config']['Entrypoint'] = json.loads(a.entrypoint)
if a.user:
    cfg['config']['User'] = a.user
cfgb = json.dumps(cfg, sort_keys=True).encode()
cfg_id = hashlib.sha256(cfgb).hexdigest()
lid = diff_id.split(':')[1]
manifest = [{'Config': f'{cfg_id}.json', 'RepoTags': [a.tag], 'Layers': [f'{lid}/layer.tar']}]
with tarfile.open(a.out, 'w') as out:
    def put(name, data):
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        out.addfile(ti, io.BytesIO(data))
    put(f'{cfg_id}.json', cfgb)
    put(f'{lid}/layer.tar', layer)
    put('manifest.json', json.dumps(manifest).encode())
print(f'{a.out}: {a.tag} config sha256:{cfg_id} layer {len(layer)} bytes')
