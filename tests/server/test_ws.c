/* server: WebSocket handshake pieces (SHA-1, Sec-WebSocket-Accept) and frame headers. */
#include "server.h"
#include "test.h"

static void hex(const unsigned char *d, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_sha1(void) {
    /* FIPS 180-4 examples, plus lengths around the padding boundary (55, 56, 64 bytes). */
    static const struct {
        const char *in;
        const char *digest;
    } rows[] = {
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
        {"The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        unsigned char d[20];
        char h[41];
        server_sha1(rows[i].in, strlen(rows[i].in), d);
        hex(d, 20, h);
        CHECK_STR(h, rows[i].digest);
    }
    /* one million 'a' (FIPS 180-4 long message) */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    unsigned char d[20];
    char h[41];
    server_sha1(a, 1000000, d);
    hex(d, 20, h);
    CHECK_STR(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(a);
}

static void test_accept(void) {
    /* RFC 6455 section 1.3 */
    char acc[29];
    server_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc);
    CHECK_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_frames(void) {
    unsigned char h[10];
    CHECK_EQ_INT(server_ws_frame_header(1, 5, h), 2);
    CHECK(h[0] == 0x81 && h[1] == 5);
    CHECK_EQ_INT(server_ws_frame_header(1, 126, h), 4);
    CHECK(h[1] == 126 && h[2] == 0 && h[3] == 126);
    CHECK_EQ_INT(server_ws_frame_header(1, 65535, h), 4);
    CHECK(h[2] == 0xff && h[3] == 0xff);
    CHECK_EQ_INT(server_ws_frame_header(8, 65536, h), 10);
    CHECK(h[0] == 0x88 && h[1] == 127 && h[7] == 1 && h[8] == 0 && h[9] == 0);
}

int main(void) {
    test_sha1();
    test_accept();
    test_frames();
    return test_finish("server/ws");
}
