/* SHA-256 for `shimmy pull`'s checks, on libcrypto (OpenSSL's EVP interface). */
#include "term.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cli_sha256 {
    EVP_MD_CTX *md;
};

cli_sha256 *cli_sha256_new(void) {
    cli_sha256 *h = malloc(sizeof *h);
    if (!h) return NULL;
    h->md = EVP_MD_CTX_new();
    if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->md);
        free(h);
        return NULL;
    }
    return h;
}

cli_sha256 *cli_git_blob_hash_new(uint64_t size) {
    cli_sha256 *h = malloc(sizeof *h);
    if (!h) return NULL;
    h->md = EVP_MD_CTX_new();
    if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha1(), NULL) != 1) {
        EVP_MD_CTX_free(h->md);
        free(h);
        return NULL;
    }
    char head[40]; /* git hashes "blob <size>\0" and then the content */
    const int n = snprintf(head, sizeof head, "blob %llu", (unsigned long long)size);
    EVP_DigestUpdate(h->md, head, (size_t)n + 1);
    return h;
}

void cli_sha256_update(cli_sha256 *h, const void *data, size_t n) {
    EVP_DigestUpdate(h->md, data, n);
}

void cli_sha256_final(cli_sha256 *h, char hex[65]) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->md, d, &n);
    if (n > 32) n = 32;
    for (unsigned i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    hex[2 * n] = '\0';
    cli_sha256_free(h);
}

void cli_sha256_free(cli_sha256 *h) {
    if (!h) return;
    EVP_MD_CTX_free(h->md);
    free(h);
}

shimmy_status cli_sha256_file(const char *path, char hex[65], shimmy_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return shimmy_error_set(err, SHIMMY_ERR_IO, path, "cannot open %s: %s", path,
                                strerror(errno));
    cli_sha256 *h = cli_sha256_new();
    char *buf = malloc(1 << 20);
    if (!h || !buf) {
        fclose(f);
        free(buf);
        cli_sha256_free(h);
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, path, "out of memory");
    }
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) cli_sha256_update(h, buf, n);
    const bool bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) {
        cli_sha256_free(h);
        return shimmy_error_set(err, SHIMMY_ERR_IO, path, "cannot read %s", path);
    }
    cli_sha256_final(h, hex);
    return SHIMMY_OK;
}
