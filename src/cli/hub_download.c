/*
 * One file from the Hub into the Hugging Face cache (layout in hub.c): the bytes go to
 * blobs/<sha256>.incomplete, hashed as they arrive; an existing .incomplete is resumed with a
 * Range request (its bytes hashed first); only a complete file whose SHA-256 matches the Hub's
 * is renamed to blobs/<sha256> and linked from snapshots/<commit>/<path>.
 */
#include "term.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

typedef struct dl {
    FILE *f;
    cli_sha256 *sha;
    uint64_t have, total, start;
    double t0, last;
    const char *name;
    hub_progress_fn progress;
    void *user;
    int write_errno;
    long status;
    bool status_checked;
    bool git; /* not in LFS: checked against the git blob id */
} dl;

static shimmy_status mkdirs(const char *path, shimmy_error *err) {
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, path, "path too long");
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            const char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return shimmy_error_set(err, SHIMMY_ERR_IO, buf, "cannot create %s: %s", buf,
                                        strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return SHIMMY_OK;
}

static bool write_body(dl *d, const char *data, size_t len) {
    if (fwrite(data, 1, len, d->f) != len) {
        d->write_errno = errno ? errno : EIO;
        return false;
    }
    cli_sha256_update(d->sha, data, len);
    d->have += len;
    const double now = cli_time_ms();
    if (d->progress && now - d->last >= 200) {
        d->last = now;
        const double s = (now - d->t0) / 1000.0;
        d->progress(d->name, d->have, d->total, s > 0 ? (double)(d->have - d->start) / s : 0, false,
                    d->user);
    }
    return true;
}

typedef struct status_tap {
    dl *d;
    cli_buf *hdr, *error_body;
} status_tap;

/* The final response's status line is in the headers by the first body byte (curl drops the
 * bodies of redirects it follows). A 200 to a Range request means the server sends the whole
 * file: what was resumed is dropped and hashing starts over. An error's body is kept for its
 * message. */
static bool on_data(const char *data, size_t len, void *user) {
    status_tap *t = user;
    dl *d = t->d;
    if (!d->status_checked) {
        d->status_checked = true;
        const char *h = t->hdr->data ? t->hdr->data : "", *sp = strchr(h, ' ');
        d->status = strncmp(h, "HTTP", 4) == 0 && sp ? atol(sp + 1) : 0;
        if (d->status == 200 && d->start > 0) {
            if (ftruncate(fileno(d->f), 0) != 0 || fseek(d->f, 0, SEEK_SET) != 0) {
                d->write_errno = errno;
                return false;
            }
            cli_sha256_free(d->sha);
            d->have = d->start = 0;
            if (!(d->sha = d->git ? cli_git_blob_hash_new(d->total) : cli_sha256_new()))
                return false;
        }
    }
    if (d->status < 200 || d->status >= 300)
        return t->error_body->len > 4096 || cli_buf_add(t->error_body, data, len);
    return write_body(d, data, len);
}

/* Hashes the bytes of an existing .incomplete so the resumed download's digest covers all. */
static shimmy_status hash_existing(dl *d, const char *path, shimmy_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return SHIMMY_OK;
    char *buf = malloc(1 << 20);
    size_t n;
    if (!buf) {
        fclose(f);
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    }
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) {
        cli_sha256_update(d->sha, buf, n);
        d->have += n;
    }
    free(buf);
    fclose(f);
    return SHIMMY_OK;
}

static shimmy_status link_snapshot(const char *repo_dir, const hub_tree *t, const hub_file *f,
                                   const char *blob_name, char **out_path, shimmy_error *err) {
    char dir[4096], path[4096], target[4096];
    snprintf(path, sizeof path, "%s/snapshots/%s/%s", repo_dir, t->revision, f->path);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    shimmy_status st = mkdirs(dir, err);
    if (st) return st;
    /* ../../blobs from snapshots/<commit>/, one more ../ per folder in the file's path */
    size_t off = (size_t)snprintf(target, sizeof target, "../../");
    for (const char *p = f->path; (p = strchr(p, '/')) != NULL; p++)
        off += (size_t)snprintf(target + off, sizeof target - off, "../");
    snprintf(target + off, sizeof target - off, "blobs/%s", blob_name);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.shimmy-link", path);
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return shimmy_error_set(err, SHIMMY_ERR_IO, path, "cannot link %s: %s", path,
                                strerror(errno));
    }
    snprintf(dir, sizeof dir, "%s/refs", repo_dir);
    if ((st = mkdirs(dir, err))) return st;
    *out_path = strdup(path);
    return *out_path ? SHIMMY_OK : shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "oom");
}

/* refs/<branch> names the commit the branch had (not written when a commit was asked for). */
static shimmy_status write_ref(const char *repo_dir, const hub_tree *t, shimmy_error *err) {
    const char *ref = t->ref, *commit = t->revision;
    if (strcmp(ref, commit) == 0 || strchr(ref, '/') || ref[0] == '.') return SHIMMY_OK;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/refs/%s", repo_dir, ref);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(commit, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        const int e = errno;
        unlink(tmp);
        return shimmy_error_set(err, SHIMMY_ERR_IO, path, "cannot write %s: %s", path, strerror(e));
    }
    return SHIMMY_OK;
}

shimmy_status hub_download(const hub_tree *t, size_t i, const char *cache_dir,
                           hub_progress_fn progress, void *user, volatile sig_atomic_t *interrupted,
                           char **out_path, shimmy_error *err) {
    const hub_file *f = &t->files[i];
    *out_path = NULL;
    char repo_dir[4096], blobs[4200], blob[4400], part[4500];
    const char *slash = strchr(t->repo, '/');
    snprintf(repo_dir, sizeof repo_dir, "%s/models--%.*s--%s", cache_dir, (int)(slash - t->repo),
             t->repo, slash + 1);
    snprintf(blobs, sizeof blobs, "%s/blobs", repo_dir);
    /* a file not in LFS (a small one) is named by its git blob id, as huggingface_hub does */
    char name[200];
    if (!f->sha256[0] && !f->git_oid[0])
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, f->path,
                                "the Hub lists %s with neither an LFS nor a git id", f->path);
    snprintf(name, sizeof name, "%s", f->sha256[0] ? f->sha256 : f->git_oid);
    snprintf(blob, sizeof blob, "%s/%s", blobs, name);
    snprintf(part, sizeof part, "%s.incomplete", blob);
    shimmy_status st = mkdirs(blobs, err);
    if (st) return st;
    struct stat sb;
    if (f->sha256[0] && stat(blob, &sb) == 0 && (uint64_t)sb.st_size == f->size) {
        if (progress) progress(f->path, f->size, f->size, 0, true, user); /* already here */
        st = link_snapshot(repo_dir, t, f, name, out_path, err);
        return st ? st : write_ref(repo_dir, t, err);
    }
    dl d = {.total = f->size, .name = f->path, .progress = progress, .user = user};
    d.git = !f->sha256[0];
    if (!(d.sha = d.git ? cli_git_blob_hash_new(f->size) : cli_sha256_new()))
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    if (stat(part, &sb) == 0 && f->size && (uint64_t)sb.st_size > f->size) unlink(part);
    if ((st = hash_existing(&d, part, err))) goto fail;
    d.start = d.have;
    /* room for what is left, checked first so a full disk fails before any byte is written */
    struct statvfs vfs;
    if (f->size > d.have && statvfs(blobs, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < f->size - d.have) {
        st = shimmy_error_set(err, SHIMMY_ERR_IO, blobs,
                              "not enough disk space for %s: %.1f MB needed, %.1f MB free in %s",
                              f->path, (double)(f->size - d.have) / 1e6,
                              (double)vfs.f_bavail * vfs.f_frsize / 1e6, blobs);
        goto fail;
    }
    if (!(d.f = fopen(part, "ab"))) {
        st = shimmy_error_set(err, SHIMMY_ERR_IO, part, "cannot write %s: %s", part,
                              strerror(errno));
        goto fail;
    }
    if (d.have < f->size || !f->size) {
        char url[8192], range[32];
        snprintf(url, sizeof url, "%s/%s/resolve/%s/%s",
                 getenv("HF_ENDPOINT") && *getenv("HF_ENDPOINT") ? getenv("HF_ENDPOINT")
                                                                 : "https://huggingface.co",
                 t->repo, t->revision, f->path);
        snprintf(range, sizeof range, "%llu-", (unsigned long long)d.have);
        cli_buf hdr = {0}, body = {0};
        status_tap tp = {&d, &hdr, &body};
        const char *tok = getenv("HF_TOKEN");
        cli_http_request rq = {.method = "GET",
                               .url = url,
                               .bearer = tok && *tok ? tok : NULL,
                               .on_data = on_data,
                               .user = &tp,
                               .interrupted = interrupted,
                               .range = d.have ? range : NULL,
                               .headers = &hdr,
                               .stall_abort = true};
        d.t0 = d.last = cli_time_ms();
        long status = 0;
        st = cli_http(&rq, &status, &body, err);
        if (d.write_errno) {
            st = shimmy_error_set(
                err, SHIMMY_ERR_IO, part, "%s writing %s (%s)%s",
                d.write_errno == ENOSPC ? "disk full" : "cannot keep", f->path,
                strerror(d.write_errno),
                d.write_errno == ENOSPC ? ": free some space and pull again to resume" : "");
        } else if (st == SHIMMY_ERR_CANCELLED) {
            shimmy_error_set(err, SHIMMY_ERR_CANCELLED, f->path,
                             "interrupted after %.1f of %.1f MB; pull again to resume",
                             (double)d.have / 1e6, (double)f->size / 1e6);
        } else if (st == SHIMMY_ERR_IO && d.have > 0) {
            char why[300];
            snprintf(why, sizeof why, "%.200s", err->message);
            st = shimmy_error_set(err, SHIMMY_ERR_IO, f->path,
                                  "the download of %s stopped after %.1f of %.1f MB (%s); pull "
                                  "again to resume",
                                  f->path, (double)d.have / 1e6, (double)f->size / 1e6, why);
        } else if (!st && status == 416) {
            unlink(part); /* the server will not continue it: start over next time */
            st = shimmy_error_set(err, SHIMMY_ERR_IO, f->path,
                                  "the server refused to resume %s (HTTP 416); the partial file "
                                  "was removed, pull again",
                                  f->path);
        } else if (!st && (status < 200 || status >= 300)) {
            char msg[320];
            cli_http_error_text(body.data, msg, sizeof msg);
            st = shimmy_error_set(
                err,
                status == 401 || status == 403 ? SHIMMY_ERR_UNAUTHORIZED
                : status == 404                ? SHIMMY_ERR_NOT_FOUND
                                               : SHIMMY_ERR_IO,
                f->path, "downloading %s: HTTP %ld (%s)%s", f->path, status, msg,
                status == 401 || status == 403 ? "; set HF_TOKEN to a token with access" : "");
        }
        cli_buf_free(&hdr);
        cli_buf_free(&body);
    }
    if (fclose(d.f) != 0 && !st)
        st = shimmy_error_set(err, SHIMMY_ERR_IO, part, "cannot write %s: %s", part,
                              strerror(errno));
    d.f = NULL;
    if (st) goto fail;
    if (f->size && d.have != f->size) {
        st = shimmy_error_set(err, SHIMMY_ERR_IO, f->path,
                              "the transfer of %s ended after %llu of %llu bytes; pull again to "
                              "resume",
                              f->path, (unsigned long long)d.have, (unsigned long long)f->size);
        goto fail;
    }
    char hex[65];
    cli_sha256_final(d.sha, hex);
    d.sha = NULL;
    const char *want = f->sha256[0] ? f->sha256 : f->git_oid;
    if (strcmp(hex, want) != 0) {
        unlink(part); /* corrupt: resuming it would only keep the bad bytes */
        return shimmy_error_set(err, SHIMMY_ERR_IO, f->path,
                                "%s is corrupt: its %s is %s, the Hub publishes %s; it was "
                                "removed (pull again)",
                                f->path, d.git ? "git blob id" : "SHA-256", hex, want);
    }
    if (rename(part, blob) != 0)
        return shimmy_error_set(err, SHIMMY_ERR_IO, blob, "cannot rename into %s: %s", blob,
                                strerror(errno));
    if (progress) progress(f->path, d.have, f->size, 0, true, user);
    st = link_snapshot(repo_dir, t, f, name, out_path, err);
    return st ? st : write_ref(repo_dir, t, err);
fail:
    if (d.f) fclose(d.f);
    cli_sha256_free(d.sha);
    return st;
}
