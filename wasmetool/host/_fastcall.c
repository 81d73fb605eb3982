/* Calls between Python and wasm in C: the optional accelerator of wasmetool/host/fastpath.py.
 *
 * ctypes costs ~0.5 us per export call (argument conversion, ffi_prep_cif, libffi) and the
 * Python closure around it another ~50 bytecodes; this module does the same work in C:
 *
 *   ExportCaller(state, func_bytes, kinds, nslots)(*args) -> int
 *       writes the arguments into a wasmtime_val_raw_t buffer, arms the store's epoch
 *       deadline for a top-level call when the epoch moved (as fastpath.py does), releases
 *       the GIL, calls wasmtime_func_call_unchecked, and returns the first result slot as
 *       an unsigned 32-bit int; a trap or error goes to the Python hook set by init().
 *   define(linker, module, name, functype, HostFunction) defines a host function whose
 *       wasmtime callback is a C trampoline that calls fn(bound, *args) under the GIL.
 *
 * No wasmtime header is needed: fastpath.py passes the addresses of the four wasmtime C API
 * functions it uses (from wasmtime-py's own ctypes library) to init(). The Python side stays
 * the reference: WASMETOOL_HOST_FASTPATH=ctypes or =0 selects the ctypes or public-API path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "structmember.h"
#include <stdint.h>
#include <string.h>

typedef union {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    unsigned char v128[16];
    void *ref;
} raw_val;                                   /* wasmtime_val_raw_t: 16 bytes */

typedef void *(*call_fn)(void *ctx, const void *func, raw_val *vals, size_t n, void **trap);
typedef void (*deadline_fn)(void *ctx, uint64_t ticks);
typedef void *(*trap_new_fn)(const char *msg, size_t len);
typedef void *(*callback_fn)(void *env, void *caller, raw_val *vals, size_t n);
typedef void *(*define_fn)(void *linker, const char *module, size_t module_len,
                           const char *name, size_t name_len, const void *ty,
                           callback_fn cb, void *env, void (*finalizer)(void *));

static call_fn wt_call;
static deadline_fn wt_set_deadline;
static trap_new_fn wt_trap_new;
static define_fn wt_define;
static PyObject *raise_hook;                 /* raise_hook(err_addr, trap_addr): raises */
static PyObject *abort_type;                 /* fastpath.AbortGuest */

#define MAX_PARAMS 16
#define MAX_FUNC_BYTES 32

/* ------------------------------------------------------------------------ CallState */
typedef struct {
    PyObject_HEAD
    long long depth;
    long long armed_at;
    unsigned long long deadline_ticks;
    void *ctx;
    PyObject *store;
    PyObject *clock;                         /* engine.CLOCK: its .epoch moves every tick */
} CallState;

static PyObject *epoch_name;

static int
CallState_init(CallState *self, PyObject *args, PyObject *kwds)
{
    PyObject *store, *clock;
    unsigned long long ctx, ticks;
    if (!PyArg_ParseTuple(args, "OKKO", &store, &ctx, &ticks, &clock))
        return -1;
    self->depth = 0;
    self->armed_at = -1;
    self->deadline_ticks = ticks;
    self->ctx = (void *)(uintptr_t)ctx;
    Py_INCREF(store);
    Py_XSETREF(self->store, store);
    Py_INCREF(clock);
    Py_XSETREF(self->clock, clock);
    return 0;
}

static void
CallState_dealloc(CallState *self)
{
    Py_XDECREF(self->store);
    Py_XDECREF(self->clock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef CallState_members[] = {
    {"depth", T_LONGLONG, offsetof(CallState, depth), 0, "nesting depth of guest calls"},
    {"armed_at", T_LONGLONG, offsetof(CallState, armed_at), 0, "epoch of the last arming"},
    {"deadline_ticks", T_ULONGLONG, offsetof(CallState, deadline_ticks), 0,
     "ticks a top-level call may run"},
    {"store", T_OBJECT, offsetof(CallState, store), READONLY, "the wasmtime.Store"},
    {NULL}
};

static PyTypeObject CallStateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmetool.host._fastcall.CallState",
    .tp_basicsize = sizeof(CallState),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "CallState(store, ctx_addr, deadline_ticks, clock)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)CallState_init,
    .tp_dealloc = (destructor)CallState_dealloc,
    .tp_members = CallState_members,
};

/* Arm the deadline of a top-level call when the epoch moved since the last arming. */
static int
arm(CallState *st)
{
    PyObject *epoch = PyObject_GetAttr(st->clock, epoch_name);
    if (epoch == NULL)
        return -1;
    long long e = PyLong_AsLongLong(epoch);
    Py_DECREF(epoch);
    if (e == -1 && PyErr_Occurred())
        return -1;
    if (e != st->armed_at) {
        st->armed_at = e;
        wt_set_deadline(st->ctx, st->deadline_ticks);
    }
    return 0;
}

/* --------------------------------------------------------------------- ExportCaller */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    CallState *state;
    PyObject *keep;                          /* the wasmtime.Func: keeps the store alive */
    Py_ssize_t nparams;
    size_t nslots;
    char kinds[MAX_PARAMS];                  /* 'i' (i32) or 'I' (i64) */
    unsigned char func[MAX_FUNC_BYTES];      /* a copy of the wasmtime_func_t */
    raw_val *vals;
} ExportCaller;

static PyObject *
ExportCaller_vectorcall(ExportCaller *self, PyObject *const *args, size_t nargsf,
                        PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != self->nparams || kwnames != NULL) {
        PyErr_Format(PyExc_TypeError, "export takes %zd positional arguments (%zd given)",
                     self->nparams, nargs);
        return NULL;
    }
    raw_val *vals = self->vals;
    for (Py_ssize_t k = 0; k < nargs; k++) {
        unsigned long long v = PyLong_AsUnsignedLongLongMask(args[k]);
        if (v == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
        if (self->kinds[k] == 'I')
            vals[k].i64 = (int64_t)v;
        else
            vals[k].i32 = (int32_t)(uint32_t)v;
    }
    CallState *st = self->state;
    if (st->depth == 0 && arm(st) < 0)
        return NULL;
    void *trap = NULL;
    void *err;
    st->depth++;
    Py_BEGIN_ALLOW_THREADS
    err = wt_call(st->ctx, self->func, vals, self->nslots, &trap);
    Py_END_ALLOW_THREADS
    st->depth--;
    if (err != NULL || trap != NULL) {
        PyObject *r = PyObject_CallFunction(raise_hook, "KK", (unsigned long long)(uintptr_t)err,
                                            (unsigned long long)(uintptr_t)trap);
        Py_XDECREF(r);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "guest call failed");
        return NULL;
    }
    return PyLong_FromUnsignedLong((uint32_t)vals[0].i32);
}

static int
ExportCaller_init(ExportCaller *self, PyObject *args, PyObject *kwds)
{
    CallState *state;
    Py_buffer func;
    const char *kinds;
    Py_ssize_t nkinds;
    Py_ssize_t nslots;
    PyObject *keep;
    if (!PyArg_ParseTuple(args, "O!y*s#nO", &CallStateType, &state, &func, &kinds, &nkinds,
                          &nslots, &keep))
        return -1;
    if (func.len > MAX_FUNC_BYTES || nkinds > MAX_PARAMS || nslots < nkinds || nslots < 1) {
        PyBuffer_Release(&func);
        PyErr_SetString(PyExc_ValueError, "unsupported export signature");
        return -1;
    }
    memset(self->func, 0, sizeof(self->func));
    memcpy(self->func, func.buf, func.len);
    PyBuffer_Release(&func);
    memcpy(self->kinds, kinds, nkinds);
    self->nparams = nkinds;
    self->nslots = (size_t)nslots;
    PyMem_Free(self->vals);
    self->vals = PyMem_Calloc((size_t)nslots, sizeof(raw_val));
    if (self->vals == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(state);
    Py_XSETREF(self->state, state);
    Py_INCREF(keep);
    Py_XSETREF(self->keep, keep);
    self->vectorcall = (vectorcallfunc)ExportCaller_vectorcall;
    return 0;
}

static void
ExportCaller_dealloc(ExportCaller *self)
{
    Py_XDECREF(self->state);
    Py_XDECREF(self->keep);
    PyMem_Free(self->vals);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ExportCallerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmetool.host._fastcall.ExportCaller",
    .tp_basicsize = sizeof(ExportCaller),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "ExportCaller(state, func_bytes, kinds, nslots, keep)(*args) -> int",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ExportCaller_init,
    .tp_dealloc = (destructor)ExportCaller_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(ExportCaller, vectorcall),
};

/* --------------------------------------------------------------------- HostFunction */
typedef struct {
    PyObject_HEAD
    PyObject *fn;
    PyObject *bound;
    PyObject *on_error;
    PyObject *name;
    Py_ssize_t nparams;
    int has_result;
    char kinds[MAX_PARAMS];
} HostFunction;

static int
HostFunction_init(HostFunction *self, PyObject *args, PyObject *kwds)
{
    PyObject *fn, *bound, *on_error, *name;
    const char *kinds;
    Py_ssize_t nkinds;
    int has_result;
    if (!PyArg_ParseTuple(args, "OOOUs#p", &fn, &bound, &on_error, &name, &kinds, &nkinds,
                          &has_result))
        return -1;
    if (nkinds > MAX_PARAMS) {
        PyErr_SetString(PyExc_ValueError, "too many parameters");
        return -1;
    }
    Py_INCREF(fn);
    Py_XSETREF(self->fn, fn);
    Py_INCREF(bound);
    Py_XSETREF(self->bound, bound);
    Py_INCREF(on_error);
    Py_XSETREF(self->on_error, on_error);
    Py_INCREF(name);
    Py_XSETREF(self->name, name);
    memcpy(self->kinds, kinds, nkinds);
    self->nparams = nkinds;
    self->has_result = has_result;
    return 0;
}

static void
HostFunction_dealloc(HostFunction *self)
{
    Py_XDECREF(self->fn);
    Py_XDECREF(self->bound);
    Py_XDECREF(self->on_error);
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject HostFunctionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmetool.host._fastcall.HostFunction",
    .tp_basicsize = sizeof(HostFunction),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "HostFunction(fn, bound, on_error, name, kinds, has_result)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)HostFunction_init,
    .tp_dealloc = (destructor)HostFunction_dealloc,
};

/* The pending exception, normalised, as one object (cleared); NULL if none. */
static PyObject *
take_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* A trap with the message of the pending AbortGuest (cleared). */
static void *
abort_trap(void)
{
    PyObject *exc = take_exception();
    PyObject *text = exc != NULL ? PyObject_Str(exc) : NULL;
    Py_XDECREF(exc);
    const char *msg = NULL;
    Py_ssize_t len = 0;
    if (text != NULL)
        msg = PyUnicode_AsUTF8AndSize(text, &len);
    if (msg == NULL || len == 0) {
        PyErr_Clear();
        msg = "aborted";
        len = 7;
    }
    void *trap = wt_trap_new(msg, (size_t)len);
    Py_XDECREF(text);
    return trap;
}

static void *
trampoline(void *env, void *caller, raw_val *vals, size_t n)
{
    HostFunction *h = (HostFunction *)env;
    void *trap = NULL;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *argv[MAX_PARAMS + 1];
    Py_ssize_t np = h->nparams;
    argv[0] = h->bound;
    Py_ssize_t made = 0;
    PyObject *result = NULL;
    for (; made < np; made++) {
        PyObject *v = h->kinds[made] == 'I' ? PyLong_FromLongLong(vals[made].i64)
                                            : PyLong_FromUnsignedLong((uint32_t)vals[made].i32);
        if (v == NULL)
            break;
        argv[made + 1] = v;
    }
    if (made == np)
        result = PyObject_Vectorcall(h->fn, argv, (size_t)np + 1, NULL);
    for (Py_ssize_t k = 0; k < made; k++)
        Py_DECREF(argv[k + 1]);
    if (result == NULL) {
        if (PyErr_ExceptionMatches(abort_type)) {
            trap = abort_trap();
            goto done;
        }
        /* any other exception: on_error(name, exc) gives the status, as in fastpath.py */
        PyObject *exc = take_exception();
        if (exc == NULL) {
            exc = Py_None;
            Py_INCREF(exc);
        }
        result = PyObject_CallFunctionObjArgs(h->on_error, h->name, exc, NULL);
        Py_XDECREF(exc);
        if (result == NULL) {
            PyErr_WriteUnraisable(h->name);
            if (h->has_result)
                vals[0].i32 = 0;
            goto done;
        }
    }
    if (h->has_result) {
        unsigned long long r = PyLong_AsUnsignedLongLongMask(result);
        if (r == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_WriteUnraisable(h->name);
            r = 0;
        }
        vals[0].i32 = (int32_t)(uint32_t)r;
    }
    Py_DECREF(result);
done:
    PyGILState_Release(gil);
    return trap;
}

/* ------------------------------------------------------------------------ functions */
static PyObject *
fc_init(PyObject *mod, PyObject *args)
{
    unsigned long long call, deadline, trap_new, define;
    PyObject *hook, *abort_cls;
    if (!PyArg_ParseTuple(args, "KKKKOO", &call, &deadline, &trap_new, &define, &hook,
                          &abort_cls))
        return NULL;
    wt_call = (call_fn)(uintptr_t)call;
    wt_set_deadline = (deadline_fn)(uintptr_t)deadline;
    wt_trap_new = (trap_new_fn)(uintptr_t)trap_new;
    wt_define = (define_fn)(uintptr_t)define;
    Py_INCREF(hook);
    Py_XSETREF(raise_hook, hook);
    Py_INCREF(abort_cls);
    Py_XSETREF(abort_type, abort_cls);
    Py_RETURN_NONE;
}

static PyObject *
fc_define(PyObject *mod, PyObject *args)
{
    unsigned long long linker, ty;
    Py_buffer module, name;
    HostFunction *h;
    if (!PyArg_ParseTuple(args, "Ky*y*KO!", &linker, &module, &name, &ty, &HostFunctionType,
                          &h))
        return NULL;
    if (wt_define == NULL) {
        PyBuffer_Release(&module);
        PyBuffer_Release(&name);
        PyErr_SetString(PyExc_RuntimeError, "_fastcall.init() was not called");
        return NULL;
    }
    /* the caller keeps h alive as long as the linker and its instances */
    void *err = wt_define((void *)(uintptr_t)linker, module.buf, (size_t)module.len, name.buf,
                          (size_t)name.len, (void *)(uintptr_t)ty, trampoline, h, NULL);
    PyBuffer_Release(&module);
    PyBuffer_Release(&name);
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)err);
}

static PyMethodDef fc_methods[] = {
    {"init", fc_init, METH_VARARGS,
     "init(call, set_deadline, trap_new, define_unchecked, raise_hook, abort_type)"},
    {"define", fc_define, METH_VARARGS,
     "define(linker_addr, module, name, functype_addr, host_function) -> error address"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef fc_module = {
    PyModuleDef_HEAD_INIT, "_fastcall", "C calls between Python and wasmtime.", -1, fc_methods,
};

PyMODINIT_FUNC
PyInit__fastcall(void)
{
    if (PyType_Ready(&CallStateType) < 0 || PyType_Ready(&ExportCallerType) < 0
            || PyType_Ready(&HostFunctionType) < 0)
        return NULL;
    epoch_name = PyUnicode_InternFromString("epoch");
    if (epoch_name == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&fc_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CallStateType);
    Py_INCREF(&ExportCallerType);
    Py_INCREF(&HostFunctionType);
    if (PyModule_AddObject(m, "CallState", (PyObject *)&CallStateType) < 0
            || PyModule_AddObject(m, "ExportCaller", (PyObject *)&ExportCallerType) < 0
            || PyModule_AddObject(m, "HostFunction", (PyObject *)&HostFunctionType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
