#!/usr/bin/env python3
"""Writes the first K layers of a GGUF model as a model of its own (a layer-skip draft):
every tensor outside blk.K.. and every metadata key unchanged, bytes and all, except
<arch>.block_count = K. Standard library only.

  cut_layers.py IN.gguf OUT.gguf K"""
import struct
import sys

FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
INT_FMT = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 10: '<Q', 11: '<q'}


def main():
    src, dst, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = open(src, 'rb').read()
    if data[:4] != b'GGUF':
        sys.exit(f'{src}: not a GGUF file')
    version, n_tensors, n_kv = struct.unpack_from('<IQQ', data, 4)
    if version < 2:
        sys.exit(f'{src}: GGUF v{version} is not supported')
    pos = 24

    def string(p):
        n, = struct.unpack_from('<Q', data, p)
        return data[p + 8:p + 8 + n], p + 8 + n

    def skip_value(t, p):
        if t == 8:
            return string(p)[1]
        if t == 9:
            et, n = struct.unpack_from('<IQ', data, p)
            p += 12
            for _ in range(n):
                p = skip_value(et, p)
            return p
        return p + FIXED[t]

    kvs, arch, align = [], None, 32  # (key, type, value start, end)
    for _ in range(n_kv):
        key, p = string(pos)
        t, = struct.unpack_from('<I', data, p)
        end = skip_value(t, p + 4)
        kvs.append((key, t, p + 4, end))
        if key == b'general.architecture':
            arch = string(p + 4)[0]
        if key == b'general.alignment':
            align, = struct.unpack_from('<I', data, p + 4)
        pos = end
    tensors = []  # (name, info bytes after the name up to the offset, type, offset)
    for _ in range(n_tensors):
        name, p = string(pos)
        nd, = struct.unpack_from('<I', data, p)
        dims_end = p + 4 + 8 * nd
        gtype, off = struct.unpack_from('<IQ', data, dims_end)
        tensors.append((name, data[p:dims_end + 4], off))
        pos = dims_end + 12
    base = (pos + align - 1) // align * align
    offsets = sorted({t[2] for t in tensors}) + [len(data) - base]

    def blob(off):
        return data[base + off:base + offsets[offsets.index(off) + 1]]

    def kept(name):
        parts = name.split(b'.')
        return not (parts[0] == b'blk' and int(parts[1]) >= k)

    keep = [t for t in tensors if kept(t[0])]
    count_key = (arch or b'') + b'.block_count'
    out = bytearray(b'GGUF' + struct.pack('<IQQ', version, len(keep), n_kv))
    for key, t, v0, v1 in kvs:
        out += struct.pack('<Q', len(key)) + key + struct.pack('<I', t)
        if key == count_key and t in INT_FMT:
            out += struct.pack(INT_FMT[t], k)
        else:
            out += data[v0:v1]
    off = 0
    blobs = []
    for name, info, o in keep:
        b = blob(o)
        out += struct.pack('<Q', len(name)) + name + info + struct.pack('<Q', off)
        blobs.append(b)
        off += (len(b) + align - 1) // align * align
    out += b'\0' * ((-len(out)) % align)
    for b in blobs:
        out += b + b'\0' * ((-len(b)) % align)
    open(dst, 'wb').write(out)


if __name__ == '__main__':
    main()
