"""The Java class that starts DynamoDB Local on loopback only, written out as bytes.

DynamoDB Local 3.3.1 has no option to choose its address: its ``DynamoDBProxyServer`` builds
Jetty's ``new Server(port)``, which listens on every interface (``*:PORT`` in ``ss -ltnp``), so
anyone who can reach the machine can read and write its tables under any credentials. Its
``-help``, its README and the npm package's README offer no host or bind option. This launcher is
what its ``ServerRunner.main`` does (parse the arguments, build the server, start it; telemetry,
disabled anyway, is left unconfigured) with three changes, in Java:

.. code-block:: java

    public final class DynamoDBCountersLauncher {
        public static void main(String[] args) throws Exception {
            DynamoDBProxyServer engine = ServerRunner.createServerFromCommandLineArgs(args);
            Field field = DynamoDBProxyServer.class.getDeclaredField("server");
            field.setAccessible(true);
            Server server = (Server) field.get(engine);
            ServerConnector connector = (ServerConnector) server.getConnectors()[0];
            connector.setHost("127.0.0.1");     // (1) loopback only, if it must bind itself
            connector.setInheritChannel(true);  // (2) serve the socket Python bound (stdin)
            server.start();                     // throws if it cannot serve (no silent hang)
            // (3) Python holds the other end of this pipe: when Python ends, however it ends
            // (SIGKILL included), read() returns and the engine exits as on SIGTERM.
            new FileInputStream(System.getProperty("dynamodb_counters.lifeline")).read();
            System.exit(0);
        }
    }

Python binds ``127.0.0.1:PORT`` itself and hands the listening socket to Java as its standard
input (Java's ``System.inheritedChannel()``, as inetd does): the port is never free between the
check and Java's bind, and only the process we started can answer on it. The private field it
reads is stable because the jar it runs is pinned by digest (``local.py``).

The class is assembled here rather than compiled so that a JRE is enough (no ``javac``) and no
binary sits in the repository. Its code is one straight line (no branch, no exception handler),
so the class file needs no stack map frames.
"""

from __future__ import annotations

import struct

CLASS_NAME = "DynamoDBCountersLauncher"
LIFELINE_PROPERTY = "dynamodb_counters.lifeline"

_PROXY = "software/amazon/dynamodb/services/local/server/DynamoDBProxyServer"
_RUNNER = "software/amazon/dynamodb/services/local/main/ServerRunner"
_SERVER = "org/eclipse/jetty/server/Server"
_CONNECTOR = "org/eclipse/jetty/server/ServerConnector"
_FIELD = "java/lang/reflect/Field"
_STREAM = "java/io/FileInputStream"

# The opcodes used (JVM specification, chapter 6).
aload_0, aload_1, aload_2, aload_3 = 0x2A, 0x2B, 0x2C, 0x2D
astore_1, astore_2, astore_3 = 0x4C, 0x4D, 0x4E
iconst_0, iconst_1, aaload, dup, pop, return_ = 0x03, 0x04, 0x32, 0x59, 0x57, 0xB1
ldc_w, new, checkcast = 0x13, 0xBB, 0xC0
invokevirtual, invokespecial, invokestatic = 0xB6, 0xB7, 0xB8


class _ConstantPool:
    """A class file's constant pool: each entry added once, numbered from 1."""

    def __init__(self) -> None:
        self._entries: dict[tuple[object, ...], int] = {}
        self._data = bytearray()

    def _add(self, key: tuple[object, ...], data: bytes) -> int:
        if key not in self._entries:
            self._entries[key] = len(self._entries) + 1
            self._data += data
        return self._entries[key]

    def utf8(self, text: str) -> int:
        raw = text.encode()
        return self._add(("utf8", text), struct.pack(">BH", 1, len(raw)) + raw)

    def klass(self, name: str) -> int:
        return self._add(("class", name), struct.pack(">BH", 7, self.utf8(name)))

    def string(self, text: str) -> int:
        return self._add(("string", text), struct.pack(">BH", 8, self.utf8(text)))

    def method(self, owner: str, name: str, descriptor: str) -> int:
        name_and_type = self._add(
            ("nat", name, descriptor),
            struct.pack(">BHH", 12, self.utf8(name), self.utf8(descriptor)),
        )
        return self._add(
            ("method", owner, name, descriptor),
            struct.pack(">BHH", 10, self.klass(owner), name_and_type),
        )

    def encode(self) -> bytes:
        return struct.pack(">H", len(self._entries) + 1) + bytes(self._data)


def launcher_class() -> bytes:
    """The bytes of ``DynamoDBCountersLauncher.class`` (class file version 61, Java 17)."""
    pool = _ConstantPool()
    this = pool.klass(CLASS_NAME)
    parent = pool.klass("java/lang/Object")

    def op(opcode: int, index: int | None = None) -> bytes:
        return bytes([opcode]) if index is None else struct.pack(">BH", opcode, index)

    code = b"".join(
        [
            op(aload_0),
            op(
                invokestatic,
                pool.method(
                    _RUNNER, "createServerFromCommandLineArgs", f"([Ljava/lang/String;)L{_PROXY};"
                ),
            ),
            op(astore_1),
            op(ldc_w, pool.klass(_PROXY)),
            op(ldc_w, pool.string("server")),
            op(
                invokevirtual,
                pool.method(
                    "java/lang/Class", "getDeclaredField", f"(Ljava/lang/String;)L{_FIELD};"
                ),
            ),
            op(astore_2),
            op(aload_2),
            op(iconst_1),
            op(invokevirtual, pool.method(_FIELD, "setAccessible", "(Z)V")),
            op(aload_2),
            op(aload_1),
            op(invokevirtual, pool.method(_FIELD, "get", "(Ljava/lang/Object;)Ljava/lang/Object;")),
            op(checkcast, pool.klass(_SERVER)),
            op(astore_3),
            op(aload_3),
            op(
                invokevirtual,
                pool.method(_SERVER, "getConnectors", "()[Lorg/eclipse/jetty/server/Connector;"),
            ),
            op(iconst_0),
            op(aaload),
            op(checkcast, pool.klass(_CONNECTOR)),
            op(dup),
            op(ldc_w, pool.string("127.0.0.1")),
            op(invokevirtual, pool.method(_CONNECTOR, "setHost", "(Ljava/lang/String;)V")),
            op(iconst_1),
            op(invokevirtual, pool.method(_CONNECTOR, "setInheritChannel", "(Z)V")),
            op(aload_3),
            op(invokevirtual, pool.method(_SERVER, "start", "()V")),
            op(new, pool.klass(_STREAM)),
            op(dup),
            op(ldc_w, pool.string(LIFELINE_PROPERTY)),
            op(
                invokestatic,
                pool.method(
                    "java/lang/System", "getProperty", "(Ljava/lang/String;)Ljava/lang/String;"
                ),
            ),
            op(invokespecial, pool.method(_STREAM, "<init>", "(Ljava/lang/String;)V")),
            op(invokevirtual, pool.method(_STREAM, "read", "()I")),
            op(pop),
            op(iconst_0),
            op(invokestatic, pool.method("java/lang/System", "exit", "(I)V")),
            op(return_),
        ]
    )
    max_stack, max_locals = 3, 4
    code_attribute = struct.pack(">HHI", max_stack, max_locals, len(code)) + code
    code_attribute += struct.pack(">HH", 0, 0)  # no exception handlers, no attributes
    main = struct.pack(
        ">HHHH",
        0x0009,  # public static
        pool.utf8("main"),
        pool.utf8("([Ljava/lang/String;)V"),
        1,
    ) + struct.pack(">HI", pool.utf8("Code"), len(code_attribute))
    main += code_attribute
    return b"".join(
        [
            struct.pack(">IHH", 0xCAFEBABE, 0, 61),
            pool.encode(),
            struct.pack(">HHH", 0x0031, this, parent),  # public final super
            struct.pack(">HH", 0, 0),  # no interfaces, no fields
            struct.pack(">H", 1),
            main,
            struct.pack(">H", 0),  # no class attributes
        ]
    )
