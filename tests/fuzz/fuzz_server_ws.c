/*
 * libFuzzer target: WebSocket framing (src/server/ws.c) on the bytes a client sends to
 * /ws/generate after the upgrade.
 *
 * Input: byte 0 picks the payload limit (the server's max_body in production), the rest is the
 * byte stream, parsed frame after frame as the connection does.
 *
 * Checked: a parsed frame lies inside the bytes seen (header + 4-byte mask + payload =
 * consumed), its payload is the masked bytes unmasked, a length over the limit is -2 and never a
 * read. And
 * the server's own frame header, wrapped as a client frame of the same payload, parses back to
 * the same opcode, length and bytes.
 */
#include "server.h"

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static const size_t limits[4] = {125, 65535, 65536, (size_t)16 << 20};

static void round_trip(const uint8_t *payload, size_t n, int opcode) {
    unsigned char hdr[10], mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t h = server_ws_frame_header(opcode, n, hdr);
    unsigned char *frame = malloc(h + 4 + n + 1);
    memcpy(frame, hdr, h);
    frame[1] |= 0x80; /* as a client sends it: masked */
    memcpy(frame + h, mask, 4);
    for (size_t i = 0; i < n; i++) frame[h + 4 + i] = payload[i] ^ mask[i % 4];
    server_ws_frame f;
    FUZZ_REQUIRE(server_ws_parse_frame(frame, h + 4 + n, n, &f) == 1);
    FUZZ_REQUIRE(f.opcode == opcode && f.fin && f.len == n && f.consumed == h + 4 + n);
    FUZZ_REQUIRE(n == 0 || memcmp(f.payload, payload, n) == 0);
    /* Every strict prefix needs more bytes. */
    FUZZ_REQUIRE(server_ws_parse_frame(frame, h + 4 + n - 1, n, &f) == 0);
    free(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t limit = limits[data[0] & 3];
    size_t n = size - 1;
    unsigned char *buf = malloc(n ? n : 1), *orig = malloc(n ? n : 1);
    memcpy(buf, data + 1, n);
    memcpy(orig, data + 1, n);
    size_t off = 0;
    for (int frames = 0; frames < 1000; frames++) {
        server_ws_frame f;
        int r = server_ws_parse_frame(buf + off, n - off, limit, &f);
        if (r == 0 || r < -2 || r > 1) {
            FUZZ_REQUIRE(r == 0);
            break;
        }
        if (r < 0) break;
        FUZZ_REQUIRE(f.consumed <= n - off && f.len <= limit && f.opcode >= 0 && f.opcode <= 15);
        FUZZ_REQUIRE(f.payload == buf + off + (f.consumed - f.len));
        const unsigned char *mask = orig + off + (f.consumed - f.len - 4);
        for (size_t i = 0; i < f.len; i++)
            FUZZ_REQUIRE(f.payload[i] == (orig[off + f.consumed - f.len + i] ^ mask[i % 4]));
        off += f.consumed;
    }
    round_trip(data + 1, n < 70000 ? n : 70000, (data[0] >> 2) & 1 ? 2 : 1);
    free(buf);
    free(orig);
    return 0;
}
