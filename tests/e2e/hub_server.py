#!/usr/bin/env python3
"""A Hugging Face Hub shaped HTTP server for tests/e2e/test_pull.sh (stdlib only, 127.0.0.1).

It answers what `shimmy pull` asks the real Hub:
  GET /api/models/ORG/NAME/revision/REV   {"id", "sha": <commit>}
  GET /api/models/ORG/NAME/tree/REV       [{"type":"file","path","size","oid","lfs":{"oid","size"}}]
  GET /ORG/NAME/resolve/REV/PATH          302 to /cdn/<sha256> (as the Hub sends LFS files to
                                          its CDN), with X-Repo-Commit, X-Linked-Etag,
                                          X-Linked-Size; the CDN honours Range (206,
                                          Content-Range) and sends ETag, Content-Length,
                                          Accept-Ranges
Repositories come from a JSON spec (argv[1]): {"repos": {"org/name": {"files": {"path":
"local file"}, "gated": true, "bad_sha": ["path"]}}, "token": "...", "cut": {"path": bytes}}.
A missing repository is a 404 (X-Error-Code: RepoNotFound); a gated one without the token a 401
(X-Error-Code: GatedRepo); a "bad_sha" file is listed with a wrong SHA-256 (or git id); a "cut"
file's first whole download stops after that many bytes (the connection is closed mid-body). Every
request is logged, one line each ("GET path range=..."), to argv[2]. The port is printed on
stdout once listening.
"""
import hashlib
import http.server
import json
import os
import sys

SPEC = json.load(open(sys.argv[1]))
LOG = open(sys.argv[2], "a", buffering=1)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = SPEC.get("token", "")
CUT = dict(SPEC.get("cut", {}))
BLOBS = {}  # sha256 -> local path


def sha_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


REPOS = {}
for name, repo in SPEC["repos"].items():
    files = []
    for path, local in repo["files"].items():
        sha = sha_of(local)
        BLOBS[sha] = local
        listed = sha if path not in repo.get("bad_sha", []) else "f" * 64
        data = open(local, "rb").read()
        git = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        if path in repo.get("bad_sha", []):
            git = "0" * 40
        files.append({"path": path, "local": local, "sha": sha, "listed": listed,
                      "size": len(data), "git": git})
    REPOS[name] = {"files": files, "gated": repo.get("gated", False)}


class Hub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, value, headers=()):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def repo_or_error(self, name):
        repo = REPOS.get(name)
        if repo is None:
            self.send_json(404, {"error": "Repository not found"},
                           [("X-Error-Code", "RepoNotFound")])
            return None
        if repo["gated"] and self.headers.get("Authorization") != "Bearer " + TOKEN:
            self.send_json(401, {"error": "Access to model %s is restricted. You must have "
                                 "access to it and be authenticated to access it." % name},
                           [("X-Error-Code", "GatedRepo")])
            return None
        return repo

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        LOG.write("%s %s range=%s auth=%s\n" % (self.command, self.path,
                                                self.headers.get("Range", "-"),
                                                "yes" if self.headers.get("Authorization")
                                                else "no"))
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6:
            name = "/".join(parts[2:4])
            repo = self.repo_or_error(name)
            if repo is None:
                return
            if parts[4] == "revision":
                return self.send_json(200, {"id": name, "sha": COMMIT})
            if parts[4] == "tree":
                # pages of 3 entries, each naming the next in a Link header, as the Hub pages
                # long listings
                # .md files are plain git files (no "lfs"; "oid" is the git blob id), the rest
                # LFS pointers, as on the Hub
                entries = [{"type": "file", "path": f["path"], "size": f["size"],
                            "oid": f["git"]} if f["path"].endswith(".md") else
                           {"type": "file", "path": f["path"], "size": 134, "oid": "a" * 40,
                            "lfs": {"oid": f["listed"], "size": f["size"], "pointerSize": 134}}
                           for f in repo["files"]] + [{"type": "directory", "path": "docs",
                                                       "oid": "b" * 40, "size": 0}]
                query = self.path.split("?")[1] if "?" in self.path else ""
                cursor = int(dict(kv.split("=") for kv in query.split("&") if "=" in kv)
                             .get("cursor", "0"))
                headers = []
                if cursor + 3 < len(entries):
                    headers.append(("Link", '<http://%s%s?recursive=true&cursor=%d>; rel="next"'
                                    % (self.headers["Host"], path, cursor + 3)))
                return self.send_json(200, entries[cursor:cursor + 3], headers)
        if len(parts) >= 5 and parts[2] == "resolve":
            name = "/".join(parts[:2])
            repo = self.repo_or_error(name)
            if repo is None:
                return
            want = "/".join(parts[4:])
            for f in repo["files"]:
                if f["path"] == want:
                    self.send_response(302)
                    self.send_header("Location", "/cdn/" + f["sha"])
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("X-Linked-Etag", '"%s"' % f["sha"])
                    self.send_header("X-Linked-Size", str(f["size"]))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            return self.send_json(404, {"error": "Entry not found"},
                                  [("X-Error-Code", "EntryNotFound")])
        if len(parts) == 2 and parts[0] == "cdn" and parts[1] in BLOBS:
            return self.send_blob(BLOBS[parts[1]], parts[1])
        self.send_json(404, {"error": "not found"})

    def send_blob(self, local, sha):
        data = open(local, "rb").read()
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"%s"' % sha)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1,
                                                                  len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        name = next((p for p, b in CUT.items() if BLOBS.get(sha) == local and
                     any(f["path"] == p and f["sha"] == sha
                         for r in REPOS.values() for f in r["files"])), None)
        if name is not None and start == 0:
            del CUT[name]  # only the first whole download is cut
            self.wfile.write(data[:SPEC["cut"][name]])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data[start:])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
print(server.server_address[1], flush=True)
server.serve_forever()
