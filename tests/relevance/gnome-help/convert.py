#!/usr/bin/env python3
"""Turns the Chinese (zh_CN) GNOME desktop help from Debian's gnome-user-docs package into kb's
import format (NDJSON): one question per help page, the page title as the question, the page's
text as its answer, the page id as external_id, the id's first word as the category.

    apt-get download gnome-user-docs && dpkg-deb -x gnome-user-docs_*.deb x
    python3 convert.py x/usr/share/help/zh_CN/gnome-help > pages.ndjson

The text is the translators' work as shipped (partly untranslated English, as people meet it);
see NOTICE.md for its licence.
"""
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

NS = "{http://projectmallard.org/1.0/}"
SKIP = {"info", "media", "comment", "links"}
BLOCK = {"p", "item", "title", "td", "th", "tr", "code", "screen", "note", "terms"}


def text_of(el, out):
    tag = el.tag.replace(NS, "")
    if tag in SKIP or "}" in tag and not el.tag.startswith(NS):
        return
    if el.text:
        out.append(el.text)
    for child in el:
        text_of(child, out)
        if child.tail:
            out.append(child.tail)
    if tag in BLOCK:
        out.append("\n")


def clean(s):
    s = re.sub(r"[ \t\r\f\v]+", " ", s)
    s = re.sub(r" *\n[ \n]*", "\n", s)
    return s.strip()


def page(path):
    root = ET.parse(path).getroot()
    if root.get("type") == "guide" and root.get("style", "") != "task":
        # Guides are lists of links: their text is the linked pages' titles.
        pass
    title_el = root.find(NS + "title")
    if title_el is None:
        return None
    parts = []
    text_of(title_el, parts)
    title = clean("".join(parts)).replace("\n", " ")
    body = []
    for child in root:
        if child.tag in (NS + "info", NS + "title"):
            continue
        text_of(child, body)
    answer = clean("".join(body))
    pid = root.get("id") or os.path.basename(path)[:-5]
    return pid, title, answer


def main(folder):
    categories = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".page"):
            continue
        got = page(os.path.join(folder, name))
        if got is None:
            continue
        pid, title, answer = got
        if len(answer) < 20 or not title:
            continue
        cat = re.sub(r"[^a-z0-9]", "", pid.split("-")[0].lower()) or "misc"
        categories.setdefault(cat, 0)
        categories[cat] += 1
        q = {
            "external_id": pid,
            "title": title[:200],
            "category": cat,
            "category_name": cat,
            "answers": [{"body": answer[:100000]}],
        }
        print(json.dumps(q, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
