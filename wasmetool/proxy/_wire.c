/* HTTP/1.1 head serialisation in C: the optional accelerator of wasmetool/proxy/http1.py
 * (head_bytes) and wasmetool/proxy/upstream.py (request_head). Same output as the Python
 * versions, which stay the reference and the fallback; None means "a name or value holds
 * a line feed" and the Python caller raises HeaderInjection, as its own check would.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* (name, value) of a header: 0, or -1 if it is not a 2-tuple of bytes (no exception set:
 * the caller answers NotImplemented and the Python version handles the odd input). */
static int
pair_parts(PyObject *item, PyObject **name, PyObject **value)
{
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
        return -1;
    *name = PyTuple_GET_ITEM(item, 0);
    *value = PyTuple_GET_ITEM(item, 1);
    if (!PyBytes_CheckExact(*name) || !PyBytes_CheckExact(*value))
        return -1;
    return 0;
}

static PyObject *
not_implemented(void)
{
    Py_INCREF(Py_NotImplemented);
    return Py_NotImplemented;
}

static int
has_lf(PyObject *b)
{
    return memchr(PyBytes_AS_STRING(b), '\n', (size_t)PyBytes_GET_SIZE(b)) != NULL;
}

/* head_bytes(first_line, headers, extra, hop) -> bytes | None
 * first_line + "name: value\r\n"... (pseudo-headers and names in hop skipped) + extra
 * (complete lines) + "\r\n". */
static PyObject *
w_head_bytes(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_CheckExact(args[0]) || !PyList_CheckExact(args[1])
            || !PyBytes_CheckExact(args[2]) || !PyAnySet_Check(args[3]))
        return not_implemented();
    PyObject *first = args[0], *headers = args[1], *extra = args[2], *hop = args[3];
    Py_ssize_t n = PyList_GET_SIZE(headers);
    Py_ssize_t size = PyBytes_GET_SIZE(first) + PyBytes_GET_SIZE(extra) + 2;
    /* one pass to size and check; names to skip get a negative mark in a small bitmap */
    unsigned char stack_skip[64];
    unsigned char *skip = n <= 64 ? stack_skip : PyMem_Malloc((size_t)n);
    if (skip == NULL)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name, *value;
        if (pair_parts(PyList_GET_ITEM(headers, i), &name, &value) < 0) {
            result = not_implemented();
            goto done;
        }
        skip[i] = 1;
        if (PyBytes_GET_SIZE(name) > 0 && PyBytes_AS_STRING(name)[0] == ':')
            continue;
        int in_hop = PySet_Contains(hop, name);
        if (in_hop < 0)
            goto done;
        if (in_hop)
            continue;
        if (has_lf(name) || has_lf(value)) {
            result = Py_None;
            Py_INCREF(result);
            goto done;
        }
        skip[i] = 0;
        size += PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 4;
    }
    result = PyBytes_FromStringAndSize(NULL, size);
    if (result == NULL)
        goto done;
    char *out = PyBytes_AS_STRING(result);
    memcpy(out, PyBytes_AS_STRING(first), (size_t)PyBytes_GET_SIZE(first));
    out += PyBytes_GET_SIZE(first);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (skip[i])
            continue;
        PyObject *item = PyList_GET_ITEM(headers, i);
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        memcpy(out, PyBytes_AS_STRING(name), (size_t)PyBytes_GET_SIZE(name));
        out += PyBytes_GET_SIZE(name);
        *out++ = ':';
        *out++ = ' ';
        memcpy(out, PyBytes_AS_STRING(value), (size_t)PyBytes_GET_SIZE(value));
        out += PyBytes_GET_SIZE(value);
        *out++ = '\r';
        *out++ = '\n';
    }
    memcpy(out, PyBytes_AS_STRING(extra), (size_t)PyBytes_GET_SIZE(extra));
    out += PyBytes_GET_SIZE(extra);
    *out++ = '\r';
    *out++ = '\n';
done:
    if (skip != stack_skip)
        PyMem_Free(skip);
    return result;
}

static PyObject *s_method, *s_path, *s_authority, *s_content_length, *s_get, *s_slash,
                *s_head, *s_empty, *s_status;

static int
bytes_eq(PyObject *a, PyObject *b)
{
    return a == b || (PyBytes_GET_SIZE(a) == PyBytes_GET_SIZE(b)
                      && memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b),
                                (size_t)PyBytes_GET_SIZE(a)) == 0);
}

/* request_head(headers, end_stream, prefix, skip) -> (bytes, chunked, is_head) | None
 * "METHOD prefix+path HTTP/1.1\r\nhost: authority\r\n" + the other headers (pseudo-headers
 * and names in skip left out; the last :method/:path/:authority wins) + transfer-encoding:
 * chunked when a body follows without content-length + "\r\n". */
static PyObject *
w_request_head(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyList_CheckExact(args[0]) || !PyBytes_CheckExact(args[2])
            || !PyAnySet_Check(args[3]))
        return not_implemented();
    PyObject *headers = args[0], *prefix = args[2], *skipset = args[3];
    int end_stream = PyObject_IsTrue(args[1]);
    if (end_stream < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(headers);
    PyObject *method = s_get, *path = s_slash, *authority = s_empty;
    int has_length = 0;
    Py_ssize_t size = 0;
    unsigned char stack_skip[64];
    unsigned char *skip = n <= 64 ? stack_skip : PyMem_Malloc((size_t)n);
    if (skip == NULL)
        return PyErr_NoMemory();
    PyObject *result = NULL, *data = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name, *value;
        if (pair_parts(PyList_GET_ITEM(headers, i), &name, &value) < 0) {
            result = not_implemented();
            goto done;
        }
        skip[i] = 1;
        if (PyBytes_GET_SIZE(name) > 0 && PyBytes_AS_STRING(name)[0] == ':') {
            if (bytes_eq(name, s_method))
                method = value;
            else if (bytes_eq(name, s_path))
                path = value;
            else if (bytes_eq(name, s_authority))
                authority = value;
            continue;
        }
        int in_skip = PySet_Contains(skipset, name);
        if (in_skip < 0)
            goto done;
        if (in_skip)
            continue;
        if (bytes_eq(name, s_content_length))
            has_length = 1;
        if (has_lf(name) || has_lf(value)) {
            result = Py_None;
            Py_INCREF(result);
            goto done;
        }
        skip[i] = 0;
        size += PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 4;
    }
    if (has_lf(method) || has_lf(path) || has_lf(authority) || has_lf(prefix)) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    int chunked = !end_stream && !has_length;
    static const char te[] = "transfer-encoding: chunked\r\n";
    size += PyBytes_GET_SIZE(method) + 1 + PyBytes_GET_SIZE(prefix) + PyBytes_GET_SIZE(path)
            + 11 /* " HTTP/1.1\r\n" */ + 6 /* "host: " */ + PyBytes_GET_SIZE(authority) + 2
            + (chunked ? (Py_ssize_t)(sizeof(te) - 1) : 0) + 2;
    data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL)
        goto done;
    char *out = PyBytes_AS_STRING(data);
#define PUT(src, len) do { memcpy(out, (src), (size_t)(len)); out += (len); } while (0)
    PUT(PyBytes_AS_STRING(method), PyBytes_GET_SIZE(method));
    *out++ = ' ';
    PUT(PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix));
    PUT(PyBytes_AS_STRING(path), PyBytes_GET_SIZE(path));
    PUT(" HTTP/1.1\r\nhost: ", 17);
    PUT(PyBytes_AS_STRING(authority), PyBytes_GET_SIZE(authority));
    *out++ = '\r';
    *out++ = '\n';
    for (Py_ssize_t i = 0; i < n; i++) {
        if (skip[i])
            continue;
        PyObject *item = PyList_GET_ITEM(headers, i);
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        PUT(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name));
        *out++ = ':';
        *out++ = ' ';
        PUT(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
        *out++ = '\r';
        *out++ = '\n';
    }
    if (chunked)
        PUT(te, sizeof(te) - 1);
    *out++ = '\r';
    *out++ = '\n';
#undef PUT
    result = Py_BuildValue("(OOO)", data, chunked ? Py_True : Py_False,
                           bytes_eq(method, s_head) ? Py_True : Py_False);
done:
    Py_XDECREF(data);
    if (skip != stack_skip)
        PyMem_Free(skip);
    return result;
}

/* The bytes lower-cased (the same object when it has no upper-case letter), new ref. */
static PyObject *
lowered(PyObject *b)
{
    const char *src = PyBytes_AS_STRING(b);
    Py_ssize_t n = PyBytes_GET_SIZE(b), i = 0;
    while (i < n && !(src[i] >= 'A' && src[i] <= 'Z'))
        i++;
    if (i == n) {
        Py_INCREF(b);
        return b;
    }
    PyObject *out = PyBytes_FromStringAndSize(src, n);
    if (out == NULL)
        return NULL;
    char *dst = PyBytes_AS_STRING(out);
    for (; i < n; i++)
        if (dst[i] >= 'A' && dst[i] <= 'Z')
            dst[i] = (char)(dst[i] + 32);
    return out;
}

static PyObject *s_transfer_encoding;

/* response_head(raw, status, hop) -> (headers, framed) | NotImplemented
 * [(b":status", status)] + the raw (name, value) pairs with lower-case names, hop-by-hop
 * ones left out (content-length is kept); framed: content-length or transfer-encoding was
 * there. */
static PyObject *
w_response_head(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])
            || !PyAnySet_Check(args[2]))
        return not_implemented();
    PyObject *raw = args[0], *hop = args[2];
    Py_ssize_t n = PyList_GET_SIZE(raw);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name, *value;
        if (pair_parts(PyList_GET_ITEM(raw, i), &name, &value) < 0)
            return not_implemented();
    }
    PyObject *headers = PyList_New(0);
    if (headers == NULL)
        return NULL;
    int framed = 0;
    PyObject *status = Py_BuildValue("(OO)", s_status, args[1]);
    if (status == NULL || PyList_Append(headers, status) < 0)
        goto fail_status;
    Py_DECREF(status);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(raw, i);
        PyObject *name = lowered(PyTuple_GET_ITEM(item, 0));
        if (name == NULL)
            goto fail;
        int is_length = bytes_eq(name, s_content_length);
        if (is_length || bytes_eq(name, s_transfer_encoding))
            framed = 1;
        int drop = 0;
        if (!is_length) {
            drop = PySet_Contains(hop, name);
            if (drop < 0) {
                Py_DECREF(name);
                goto fail;
            }
        }
        if (!drop) {
            PyObject *pair = PyTuple_Pack(2, name, PyTuple_GET_ITEM(item, 1));
            if (pair == NULL || PyList_Append(headers, pair) < 0) {
                Py_XDECREF(pair);
                Py_DECREF(name);
                goto fail;
            }
            Py_DECREF(pair);
        }
        Py_DECREF(name);
    }
    PyObject *result = Py_BuildValue("(NO)", headers, framed ? Py_True : Py_False);
    return result;
fail_status:
    Py_XDECREF(status);
fail:
    Py_DECREF(headers);
    return NULL;
}

/* uuid4(pool, offset) -> bytes: the 16 random bytes at pool[offset:offset+16] as a
 * version-4 UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (as str(uuid.uuid4()) gives it). */
static PyObject *
w_uuid4(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyLong_CheckExact(args[1]))
        return not_implemented();
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    if (off == -1 && PyErr_Occurred())
        return NULL;
    if (off < 0 || off + 16 > PyBytes_GET_SIZE(args[0]))
        return not_implemented();
    unsigned char b[16];
    memcpy(b, PyBytes_AS_STRING(args[0]) + off, 16);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    PyObject *out = PyBytes_FromStringAndSize(NULL, 36);
    if (out == NULL)
        return NULL;
    char *o = PyBytes_AS_STRING(out);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    return out;
}

static PyMethodDef w_methods[] = {
    {"uuid4", (PyCFunction)(void (*)(void))w_uuid4, METH_FASTCALL,
     "uuid4(pool, offset) -> the 16 bytes at offset as a version-4 UUID (bytes)"},
    {"response_head", (PyCFunction)(void (*)(void))w_response_head, METH_FASTCALL,
     "response_head(raw, status, hop) -> (headers, framed)"},
    {"head_bytes", (PyCFunction)(void (*)(void))w_head_bytes, METH_FASTCALL,
     "head_bytes(first_line, headers, extra, hop) -> bytes, or None if a header holds LF"},
    {"request_head", (PyCFunction)(void (*)(void))w_request_head, METH_FASTCALL,
     "request_head(headers, end_stream, prefix, skip) -> (head, chunked, is_head) or None"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef w_module = {
    PyModuleDef_HEAD_INIT, "_wire", "HTTP/1.1 head serialisation in C.", -1, w_methods,
};

PyMODINIT_FUNC
PyInit__wire(void)
{
    s_method = PyBytes_FromString(":method");
    s_path = PyBytes_FromString(":path");
    s_authority = PyBytes_FromString(":authority");
    s_content_length = PyBytes_FromString("content-length");
    s_get = PyBytes_FromString("GET");
    s_slash = PyBytes_FromString("/");
    s_head = PyBytes_FromString("HEAD");
    s_empty = PyBytes_FromString("");
    s_status = PyBytes_FromString(":status");
    s_transfer_encoding = PyBytes_FromString("transfer-encoding");
    if (!s_status || !s_transfer_encoding || !s_method || !s_path || !s_authority || !s_content_length || !s_get || !s_slash
            || !s_head || !s_empty)
        return NULL;
    return PyModule_Create(&w_module);
}
