/* JSON Schema -> GBNF: every case's grammar is compiled by the grammar module and run through its
 * byte matcher; documents valid under the schema must be accepted whole, invalid ones refused.
 * Unsupported keywords must fail with their JSON pointer. (Schemas are written with ' for ".) */
#include "grammar/grammar.h"
#include "grammar/schema.h"
#include "test.h"

static char *dq(const char *s) {
    char *o = strdup(s);
    for (char *p = o; *p; p++)
        if (*p == '\'') *p = '"';
    return o;
}

/* 1 accepted whole, 0 refused, -1 the matcher failed otherwise. */
static int matches(grammar *g, const char *doc) {
    grammar_matcher *m = NULL;
    if (grammar_matcher_new(g, NULL, &m, NULL) != SHIMMY_OK) return -1;
    shimmy_error err = {0};
    shimmy_status st = grammar_matcher_accept_bytes(m, doc, strlen(doc), &err);
    int r = st == SHIMMY_OK ? grammar_matcher_can_end(m) : st == SHIMMY_ERR_INVALID_ARG ? 0 : -1;
    grammar_matcher_free(m);
    return r;
}

typedef struct tcase {
    const char *schema;
    const char *valid[12];
    const char *invalid[12];
} tcase;

static const tcase cases[] = {
    {"{'type':'integer'}", {"0", "-5", "123456789"}, {"01", "1.5", "'1'", "-", "1e3"}},
    {"{'type':'integer','minimum':-12,'maximum':305}",
     {"-12", "-1", "0", "9", "10", "99", "100", "299", "305"},
     {"-13", "306", "310", "1000", "-20", "400"}},
    {"{'type':'integer','exclusiveMinimum':7,'exclusiveMaximum':100}",
     {"8", "9", "10", "99"},
     {"7", "100", "0", "-1"}},
    {"{'type':'integer','minimum':1000}",
     {"1000", "9999", "10000", "123456789012345"},
     {"999", "0", "-1000"}},
    {"{'type':'integer','maximum':-3}", {"-3", "-4", "-100000"}, {"-2", "0", "3"}},
    {"{'type':'number','minimum':1.5,'maximum':3.25}",
     {"1.5", "1.50", "1.7", "2", "2.999", "3", "3.25", "3.2", "3.0"},
     {"1.49", "1.4", "1", "3.26", "3.3", "4", "-2", "1.5e0"}},
    {"{'type':'number','exclusiveMinimum':0}",
     {"0.001", "1", "12.5", "0.0000000000000001"},
     {"0", "0.0", "-0.5", "-1", "0.00000000000000000000001"}},
    {"{'type':'number','minimum':0,'maximum':1}",
     {"0", "0.5", "1", "1.0000000000000000", "0.1234567890123456"},
     {"1.01", "0.00000000000000000", "0.12345678901234567"}},
    {"{'type':'number','exclusiveMaximum':-0.5}",
     {"-0.6", "-1", "-0.51"},
     {"-0.5", "-0.50", "0", "-0.4"}},
    {"{'type':'number','minimum':-2.5,'exclusiveMaximum':0}",
     {"-2.5", "-2", "-0.1", "-1"},
     {"0", "-2.6", "-3", "1"}},
    {"{'type':'number'}", {"0", "-1.5", "3e10", "2.5E-3"}, {"01", ".5", "1.", "+1", "NaN"}},
    {"{'type':'string','minLength':2,'maxLength':3}",
     {"'ab'", "'abc'", "'\\u00e9x'", "'\\\\n'"},
     {"'a'", "'abcd'", "''", "'\\ud800x'"}},
    {"{'type':'string','pattern':'^[a-c]+-[0-9]{2,3}$'}",
     {"'a-12'", "'abc-123'"},
     {"'a-1'", "'d-12'", "'a-1234'", "'xa-12'"}},
    {"{'type':'string','pattern':'foo'}", {"'foo'", "'xfooy'"}, {"'fo'", "'bar'"}},
    {"{'type':'string','pattern':'^[a-z_]+$','maxLength':4}",
     {"'a'", "'ab_d'"},
     {"''", "'abcde'", "'A'"}},
    {"{'type':'string','pattern':'^id-[0-9]*x$','minLength':6,'maxLength':7}",
     {"'id-12x'", "'id-123x'"},
     {"'id-1x'", "'id-1234x'"}},
    {"{'type':'string','pattern':'^(cat|dog)s?$'}", {"'cat'", "'dogs'"}, {"'cats!'", "'cow'"}},
    {"{'type':'string','pattern':'^\\\\d{3}\\\\.[^x]$'}",
     {"'123.a'", "'123.\\\"'", "'123.\\\\'"},
     {"'123.x'", "'12.a'", "'123a'"}},
    {"{'type':'string','format':'date'}",
     {"'2024-02-29'", "'2023-12-31'", "'2000-02-29'", "'2023-04-30'"},
     {"'2023-02-29'", "'1900-02-29'", "'2023-04-31'", "'2023-13-01'", "'2023-1-01'"}},
    {"{'type':'string','format':'date-time'}",
     {"'2024-01-02T03:04:05Z'", "'2024-01-02T23:59:59.123+05:30'"},
     {"'2024-01-02T24:00:00Z'", "'2024-01-02 03:04:05'", "'2024-01-02T03:04:05'"}},
    {"{'type':'string','format':'uuid'}",
     {"'123e4567-e89b-12d3-a456-426614174000'"},
     {"'123e4567e89b12d3a456426614174000'"}},
    {"{'type':'string','format':'ipv4'}",
     {"'192.168.0.1'", "'255.255.255.255'"},
     {"'256.1.1.1'", "'1.2.3'"}},
    {"{'type':'string','format':'ipv6'}",
     {"'2001:db8:0:0:0:ff00:42:8329'"},
     {"'2001:db8::1'", "'1:2:3:4:5:6:7'", "'g::'"}},
    {"{'type':'string','format':'uri'}",
     {"'https://example.com/a/b.c'", "'http://x'"},
     {"'ftp://x'", "'https://'", "'https://a b'"}},
    {"{'type':'string','format':'duration'}",
     {"'P3D'", "'P12DT5H'", "'P2W'"},
     {"'P'", "'3D'", "'PT'"}},
    {"{'type':'string','format':'email'}",
     {"'a.b@example.com'"},
     {"'a@b'", "'@x.y'", "'a..b@x.y'"}},
    {"{'type':'boolean'}", {"true", "false"}, {"1", "'true'"}},
    {"{'type':['string','null']}", {"null", "'x'"}, {"1", "true"}},
    {"{'enum':['red',1,null,{'a':[1,2]}]}",
     {"'red'", "1", "null", "{'a':[1,2]}"},
     {"'blue'", "2", "{}"}},
    {"{'const':'only'}", {"'only'"}, {"'other'"}},
    {"{'type':'string','enum':['a','bbb','cc','dddd',7],'minLength':2,'maxLength':3}",
     {"'bbb'", "'cc'"},
     {"'a'", "'dddd'", "7"}},
    {"{'enum':[1,5,12,-3],'minimum':2,'exclusiveMaximum':12}", {"5"}, {"1", "12", "-3"}},
    {"{'enum':['ab1','xy2','ab'],'pattern':'^ab'}", {"'ab1'", "'ab'"}, {"'xy2'"}},
    {"{'type':'object','properties':{'name':{'type':'string'},'age':{'type':'integer'}},"
     "'required':['name']}",
     {"{'name':'x'}", "{'name':'x','age':3}", "{ 'name': 'x', 'age': 3 }"},
     {"{}", "{'age':3}", "{'age':3,'name':'x'}", "{'name':'x','other':1}", "{'name':1}"}},
    {"{'type':'object','properties':{'a':{'type':'integer'},'b':{'type':'integer'}}}",
     {"{}", "{'a':1}", "{'b':2}", "{'a':1,'b':2}"},
     {"{,}", "{'a':1,}", "{'b':2,'a':1}"}},
    {"{'type':'object','properties':{'a':{'const':1}},'additionalProperties':{'type':'boolean'}}",
     {"{'a':1}", "{'a':1,'x':true}", "{'x':false}", "{'ab':true}", "{'':true}"},
     {"{'a':true}", "{'x':1}", "{'a':1,'a':true}"}},
    {"{'type':'object'}", {"{}", "{'k':[1,{'z':null}]}"}, {"[]", "{'k'}"}},
    {"{'type':'array','items':{'type':'integer'},'minItems':1,'maxItems':3}",
     {"[1]", "[1,2]", "[1, 2, 3]"},
     {"[]", "[1,2,3,4]", "['a']"}},
    {"{'type':'array','prefixItems':[{'type':'string'},{'type':'integer'}],'items':false}",
     {"[]", "['a']", "['a',1]"},
     {"['a',1,2]", "[1]"}},
    {"{'type':'array','prefixItems':[{'type':'string'}],'minItems':2,'items':{'type':'null'}}",
     {"['a',null]", "['a',null,null]"},
     {"['a']", "['a',1]"}},
    {"{'$defs':{'node':{'type':'object','properties':{'v':{'type':'integer'},"
     "'next':{'anyOf':[{'$ref':'#/$defs/node'},{'type':'null'}]}},'required':['v','next'],"
     "'additionalProperties':false}},'$ref':'#/$defs/node'}",
     {"{'v':1,'next':null}", "{'v':1,'next':{'v':2,'next':null}}"},
     {"{'v':1}", "{'v':1,'next':{'v':2}}"}},
    {"{'allOf':[{'type':'object','properties':{'a':{'type':'string'}},'required':['a']},"
     "{'properties':{'b':{'type':'integer'}},'required':['b']}]}",
     {"{'a':'x','b':1}"},
     {"{'a':'x'}", "{'b':1}"}},
    {"{'oneOf':[{'type':'object','properties':{'kind':{'const':'a'},'x':{'type':'integer'}},"
     "'required':['kind','x'],'additionalProperties':false},{'type':'object','properties':"
     "{'kind':{'const':'b'}},'required':['kind'],'additionalProperties':false}]}",
     {"{'kind':'a','x':1}", "{'kind':'b'}"},
     {"{'kind':'b','x':1}", "{'kind':'c'}"}},
    {"{'oneOf':[{'type':'string'},{'type':'integer'}]}", {"'s'", "3"}, {"true"}},
    {"{'type':['string','null'],'anyOf':[{'type':'string','maxLength':1},{'type':'integer'},"
     "{'type':'null'}]}",
     {"'a'", "null"},
     {"'ab'", "3"}},
    {"{'allOf':[{'description':'a','title':'x','type':'string'},{'description':'b','maxLength':2}]"
     "}",
     {"'ab'"},
     {"'abc'"}},
    {"{'title':'t','description':'d','examples':[1],'default':2,'$comment':'c','type':'null'}",
     {"null"},
     {"1"}},
    {"true", {"1", "'x'", "[null]", "{}"}, {"x"}},
};

typedef struct ecase {
    const char *schema;
    const char *where; /* JSON pointer the error must name */
} ecase;

static const ecase errors[] = {
    {"{'not':{'type':'string'}}", "/not"},
    {"{'type':'object','properties':{'a':{'type':'integer','multipleOf':3}}}",
     "/properties/a/multipleOf"},
    {"{'type':'array','uniqueItems':true}", "/uniqueItems"},
    {"{'uniqueItems':true}", "/uniqueItems"},
    {"{'if':{},'then':{}}", "/if"},
    {"{'patternProperties':{'^x':{}}}", "/patternProperties"},
    {"{'type':'object','dependentRequired':{'a':['b']}}", "/dependentRequired"},
    {"{'oneOf':[{'type':'integer'},{'type':'number'}]}", "/oneOf/1"},
    {"{'oneOf':[{'properties':{'a':{}},'required':['a'],'minLength':1},{'type':'string'}]}",
     "/oneOf/1"},
    {"{'type':'string','format':'uri-template'}", "/format"},
    {"{'type':'string','pattern':'(?=a)b'}", "/pattern"},
    {"{'type':'string','pattern':'\\\\bword'}", "/pattern"},
    {"{'type':'string','pattern':'a[b'}", "/pattern"},
    {"{'$ref':'#/$defs/missing'}", "/$ref"},
    {"{'$ref':'#'}", "/$ref"},
    {"{'anyOf':[{'$ref':'#'},{'type':'null'}]}", "/anyOf/0/$ref"},
    {"{'$defs':{'a':{'$ref':'#/$defs/b'},'b':{'oneOf':[{'$ref':'#/$defs/a'}]}},'$ref':'#/$defs/a'}",
     "/$defs/b/oneOf/0/$ref"},
    {"{'$ref':'http://example.com/s.json'}", "/$ref"},
    {"{'type':'strin'}", "/type"},
    {"{'items':{'$defs':{},'allOf':[{'type':'string'},{'type':'string','pattern':'a'},"
     "{'pattern':'b'}]}}",
     "/items/allOf"},
    {"{'type':'string','minLength':3,'pattern':'^(ab)+$'}", "/minLength"},
    {"{'type':'string','maxLength':3,'pattern':'^a+b+$'}", "/maxLength"},
    {"{'type':'string','maxLength':3,'pattern':'a+'}", "/maxLength"},
    {"{'type':'object','properties':{'a':{}},'minProperties':1}", "/minProperties"},
    {"{'type':'integer','minimum':5,'maximum':4}", "/minimum"},
    {"{'enum':['a','b'],'minLength':2}", "/enum"},
    {"{'items':{'$defs':{'x':{}},'enum':[[1]],'items':{'$ref':'#/$defs/x'}}}", "/items/enum"},
    {"{'$defs':{'a':{'$ref':'#/$defs/a','type':'object'}},'$ref':'#/$defs/a'}", ""},
};

static void run_case(const tcase *t) {
    char *schema = dq(t->schema), *gbnf = NULL;
    shimmy_error err = {0};
    shimmy_status st = grammar_schema_to_gbnf(schema, strlen(schema), &gbnf, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s: %s", t->schema, err.message);
    grammar *g = NULL;
    if (st == SHIMMY_OK) {
        st = grammar_compile(gbnf, strlen(gbnf), &g, &err);
        CHECK_MSG(st == SHIMMY_OK, "%s: grammar does not compile: %s\n%s", t->schema, err.message,
                  gbnf);
    }
    for (int i = 0; g && i < 12 && t->valid[i]; i++) {
        char *doc = dq(t->valid[i]);
        int r = matches(g, doc);
        CHECK_MSG(r == 1, "%s: valid %s refused (%d)\n%s", t->schema, doc, r, gbnf);
        free(doc);
    }
    for (int i = 0; g && i < 12 && t->invalid[i]; i++) {
        char *doc = dq(t->invalid[i]);
        int r = matches(g, doc);
        CHECK_MSG(r == 0, "%s: invalid %s accepted (%d)\n%s", t->schema, doc, r, gbnf);
        free(doc);
    }
    grammar_unref(g);
    free(gbnf);
    free(schema);
}

static void run_error(const ecase *e) {
    char *schema = dq(e->schema), *gbnf = NULL;
    shimmy_error err = {0};
    shimmy_status st = grammar_schema_to_gbnf(schema, strlen(schema), &gbnf, &err);
    CHECK_MSG(st == SHIMMY_ERR_INVALID_ARG, "%s: converted instead of failing", e->schema);
    CHECK_MSG(!strncmp(err.where, e->where, strlen(e->where)), "%s: where \"%s\", want \"%s\"",
              e->schema, err.where, e->where);
    CHECK(gbnf == NULL);
    CHECK(err.message[0] != 0);
    free(gbnf);
    free(schema);
}

/* Properties come out in declared order, and hostile input fails cleanly. */
static void test_misc(void) {
    char *gbnf = NULL;
    shimmy_error err = {0};
    CHECK(grammar_schema_to_gbnf("{", 1, &gbnf, &err) == SHIMMY_ERR_INVALID_JSON);
    CHECK(strstr(err.message, "line") != NULL);
    /* Deep nesting. */
    size_t n = 0;
    char *deep = malloc(20000);
    for (int i = 0; i < 1000; i++) n += (size_t)sprintf(deep + n, "{\"items\":");
    n += (size_t)sprintf(deep + n, "{}");
    for (int i = 0; i < 1000; i++) deep[n++] = '}';
    deep[n] = 0;
    CHECK(grammar_schema_to_gbnf(deep, n, &gbnf, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "deeper") != NULL);
    free(deep);
    /* Huge repetition. */
    const char *big = "{\"type\":\"string\",\"maxLength\":100000000}";
    CHECK(grammar_schema_to_gbnf(big, strlen(big), &gbnf, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(strstr(err.where, "maxLength") != NULL);
    /* Exponential allOf/$ref fan-out stays bounded. */
    const char *fan =
        "{\"$defs\":{\"a\":{\"allOf\":[{\"$ref\":\"#/$defs/b\"},{\"$ref\":\"#/$defs/b\"}]},"
        "\"b\":{\"allOf\":[{\"$ref\":\"#/$defs/c\"},{\"$ref\":\"#/$defs/c\"}]},"
        "\"c\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"string\"}}}},"
        "\"$ref\":\"#/$defs/a\"}";
    shimmy_status st = grammar_schema_to_gbnf(fan, strlen(fan), &gbnf, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s", err.message);
    free(gbnf);
    gbnf = NULL;
    const char *order = "{\"properties\":{\"zeta\":{},\"alpha\":{},\"mid\":{}},\"required\":["
                        "\"mid\",\"zeta\",\"alpha\"]}";
    st = grammar_schema_to_gbnf(order, strlen(order), &gbnf, &err);
    CHECK(st == SHIMMY_OK);
    if (gbnf) {
        grammar *g = NULL;
        CHECK(grammar_compile(gbnf, strlen(gbnf), &g, &err) == SHIMMY_OK);
        if (g) {
            CHECK(matches(g, "{\"zeta\":1,\"alpha\":2,\"mid\":3}") == 1);
            CHECK(matches(g, "{\"mid\":3,\"zeta\":1,\"alpha\":2}") == 0);
        }
        grammar_unref(g);
    }
    free(gbnf);
}

int main(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) run_error(&errors[i]);
    test_misc();
    return test_finish("grammar/test_schema");
}
