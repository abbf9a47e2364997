"""Drives kb's /mcp with the official MCP Python SDK (PyPI `mcp`, pinned by .ci/mcp-client):
initialise, list the tools, search in Chinese, read a hit, draw and grade a quiz question, and
see a read key refused on create. Any failed check exits non-zero.

    python tests/mcp/client.py http://127.0.0.1:PORT/mcp <read-key>
"""

import asyncio
import sys

import httpx2  # mcp 2.x speaks HTTP through httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent


def text(result) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


def check(ok: bool, what: str) -> None:
    if not ok:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


async def main(url: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                check(init.server_info.name == "kb", f"initialised ({init.protocol_version})")

                tools = {t.name: t for t in (await session.list_tools()).tools}
                for name in ["search_questions", "get_question", "list_categories",
                             "list_tags", "draw_quiz", "grade_answer", "create_question"]:
                    check(name in tools, f"tool {name} listed")
                check("query" in tools["search_questions"].input_schema["properties"],
                      "search_questions takes a query")

                found = await session.call_tool("search_questions",
                                                {"query": "GMP 调度", "limit": 3})
                check(not found.is_error, "a Chinese search succeeds")
                hits = found.structured_content["hits"]
                check(len(hits) > 0 and "GMP" in hits[0]["title"],
                      f"it finds the GMP question: {hits[0]['title'] if hits else None}")
                check("<mark>" not in hits[0]["answer_highlight"], "highlights are plain text")

                q = await session.call_tool("get_question", {"id": hits[0]["id"]})
                check(not q.is_error and q.structured_content["id"] == hits[0]["id"],
                      "the hit reads in full")
                check(len(q.structured_content["answers"]) > 0, "with its answers")

                drawn = await session.call_tool("draw_quiz", {"count": 3, "mode": "choice"})
                check(not drawn.is_error, "a quiz draws")
                item = drawn.structured_content["items"][0]
                again = await session.call_tool(
                    "draw_quiz",
                    {"count": 3, "mode": "choice",
                     "session": drawn.structured_content["session"]})
                first = {i["question"]["id"] for i in drawn.structured_content["items"]}
                second = {i["question"]["id"] for i in again.structured_content["items"]}
                check(not (first & second), "the session's second draw repeats nothing")
                graded = await session.call_tool(
                    "grade_answer",
                    {"ticket": item["ticket"], "choice_id": item["choices"][0]["id"]})
                check(not graded.is_error and isinstance(graded.structured_content["correct"],
                                                         bool), "the choice is graded")

                bad = await session.call_tool("search_questions", {"query": "GMP",
                                                                   "limit": "ten"})
                check(bad.is_error and "`limit`" in text(bad),
                      "a bad argument is a tool error naming it")

                refused = await session.call_tool(
                    "create_question",
                    {"title": "只读密钥不能创建？", "category": "golang",
                     "answers": ["不能。"]})
                check(refused.is_error and "forbidden" in text(refused),
                      "a read key is refused on create")
    print("ALL CHECKS PASSED")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
