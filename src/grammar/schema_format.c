/* String formats as grammars, written to pass ajv-formats' "full" checks: calendar dates with
 * month lengths and leap years, times with a time zone (RFC 3339), uuid, email, ipv4, hostname.
 * A format outside this table is an error: JSON Schema validators that check formats would
 * reject what an unconstrained string produces. */
#include "grammar/schema.h"

#include <stdint.h>
#include <string.h>

#define Q  "\"\\\"\" " /* opening quote */
#define QE " \"\\\"\"" /* closing quote */

#define DATE                                                                                       \
    "( [0-9]{4} \"-\" ( ( \"01\" | \"03\" | \"05\" | \"07\" | \"08\" | \"10\" | \"12\" ) \"-\" "   \
    "( \"0\" [1-9] | [12] [0-9] | \"3\" [01] ) | ( \"04\" | \"06\" | \"09\" | \"11\" ) \"-\" "     \
    "( \"0\" [1-9] | [12] [0-9] | \"30\" ) | \"02-\" ( \"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8] ) " \
    ") "                                                                                           \
    "| ( [0-9]{2} ( [02468] [48] | [13579] [26] | [2468] \"0\" ) | ( [02468] [048] | [13579] "     \
    "[26] "                                                                                        \
    ") \"00\" ) \"-02-29\" )"

#define TIME                                                                                       \
    "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,9} )? "      \
    "( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )"

#define LABEL "[a-zA-Z0-9] ( [a-zA-Z0-9\\x2D]{0,60} [a-zA-Z0-9] )?"
#define ATOM  "[a-zA-Z0-9!#$%&'*+/=?\\x5E_\\x60{|}~\\x2D]+"

static const struct {
    const char *name, *body;
    size_t minlen, maxlen;
} formats[] = {
    {"date", Q DATE QE, 10, 10},
    {"time", Q TIME QE, 9, 24},
    {"date-time", Q DATE " \"T\" " TIME QE, 20, 35},
    {"uuid",
     Q "[0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" "
       "[0-9a-f]{12}" QE,
     36, 36},
    {"email", Q ATOM " ( \".\" " ATOM " )* \"@\" ( " LABEL " \".\" )+ " LABEL QE, 5, SIZE_MAX},
    {"ipv4",
     Q "( \"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9]? [0-9] ) ( \".\" ( \"25\" "
       "[0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9]? [0-9] ) ){3}" QE,
     7, 15},
    {"hostname", Q LABEL " ( \".\" " LABEL " ){0,3}" QE, 1, 251},
    /* the full eight-group form only */
    {"ipv6", Q "[0-9a-fA-F]{1,4} ( \":\" [0-9a-fA-F]{1,4} ){7}" QE, 15, 39},
    /* http(s) URLs: scheme, host, a few path segments */
    {"uri",
     Q "\"http\" \"s\"? \"://\" " LABEL " ( \".\" " LABEL " ){0,3} ( \"/\" "
       "[a-zA-Z0-9._~\\x2D]{0,20} ){0,4}" QE,
     8, SIZE_MAX},
    /* days (and hours) or weeks */
    {"duration", Q "\"P\" ( [0-9]{1,4} \"D\" ( \"T\" [0-9]{1,2} \"H\" )? | [0-9]{1,3} \"W\" )" QE,
     3, 10},
};

const char *gs_format(gs_ctx *c, const char *format, const char *path, size_t *minlen,
                      size_t *maxlen) {
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(format, formats[i].name)) continue;
        *minlen = formats[i].minlen;
        *maxlen = formats[i].maxlen;
        return gs_rule(c, formats[i].name, formats[i].body);
    }
    return gs_fail(c, path, NULL,
                   "format \"%s\" is not supported (supported: date, time, date-time, duration, "
                   "uuid, email, ipv4, ipv6, hostname, uri); use a pattern instead",
                   format);
}
