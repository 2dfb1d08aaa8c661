#!/usr/bin/env python3
"""An MCP client on the official Python SDK (PyPI `mcp`, pinned in requirements.lock.txt)
that toolmesh's interop tests run against `toolmesh serve`.

  python py_client.py [--mode legacy|auto] [--timeout SECS] [--cancel-on-progress]
                      URL [TOOL JSON-ARGS]...

Connects over streamable HTTP, lists every tool (all pages), calls each TOOL with its
JSON arguments in order, and prints one JSON document on stdout:

  {"protocol": "...", "server": {"name": "...", "version": "..."},
   "tools": [{"name": "...", "required": [...]}],
   "calls": [{"tool": "...", "is_error": false, "text": ["..."], "structured": ...}
             | {"tool": "...", "error": {"code": -32602, "message": "..."}}]}

Each call asks for progress; the notifications received are in its entry as
`"progress": [{"progress", "total", "message"}]`. With --cancel-on-progress a call is
abandoned (the SDK sends notifications/cancelled) at its first progress notification,
and its entry says `"cancelled": true`.

A JSON-RPC error of a call is reported in its entry, not raised. Exit 0 once the
document is printed; 1 on any other failure (connection, protocol); 3 on timeout.
"""
import argparse
import json
import sys

import anyio
from mcp import Client
from mcp.shared.exceptions import MCPError


async def session(a) -> dict:
    async with Client(a.url, mode=a.mode, read_timeout_seconds=a.timeout) as client:
        info = client.server_info
        report = {
            "protocol": client.protocol_version,
            "server": {"name": info.name, "version": info.version} if info else None,
            "tools": [],
            "calls": [],
        }
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                schema = tool.input_schema or {}
                report["tools"].append({"name": tool.name, "required": schema.get("required", [])})
            cursor = page.next_cursor
            if not cursor:
                break
        for name, raw in zip(a.calls[::2], a.calls[1::2]):
            report["calls"].append(await call(client, name, json.loads(raw), a.cancel_on_progress))
        return report


async def call(client, name: str, arguments: dict, cancel_on_progress: bool) -> dict:
    entry = {"tool": name, "progress": []}
    with anyio.CancelScope() as scope:

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            entry["progress"].append({"progress": progress, "total": total, "message": message})
            if cancel_on_progress:
                scope.cancel()

        try:
            result = await client.call_tool(name, arguments, progress_callback=on_progress)
        except MCPError as error:
            entry["error"] = {"code": error.code, "message": error.message}
        else:
            entry["is_error"] = bool(result.is_error)
            entry["text"] = [getattr(block, "text", None) for block in result.content]
            entry["structured"] = result.structured_content
    if scope.cancelled_caught:
        entry["cancelled"] = True
    return entry


async def guarded(a) -> dict:
    with anyio.fail_after(a.timeout):
        return await session(a)


def leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("calls", nargs="*", metavar="TOOL JSON-ARGS")
    p.add_argument("--mode", default="legacy", help="legacy (initialize) or auto (server/discover first)")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--cancel-on-progress", action="store_true",
                   help="abandon each call at its first progress notification")
    a = p.parse_args()
    if len(a.calls) % 2:
        p.error("every TOOL needs its JSON arguments")
    try:
        report = anyio.run(guarded, a)
    except BaseException as error:  # noqa: BLE001 - one line naming the root cause
        cause = leaf(error)
        print(f"py_client: {type(cause).__name__}: {cause}", file=sys.stderr)
        return 3 if isinstance(cause, TimeoutError) else 1
    json.dump(report, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
