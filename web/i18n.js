// Interface text in Chinese (the default) and English. The choice is kept in this browser.

const TEXT = {
  zh: {
    "nav.search": "搜索", "nav.study": "学习", "nav.due": "今日复习", "nav.curate": "编辑",
    "nav.settings": "设置", "foot.api": "API 文档",
    "search.label": "搜索问题", "search.placeholder": "例如：GMP 调度、sync.Map、协程",
    "search.go": "搜索", "search.results": (n) => `共 ${n} 个结果`, "search.about": (n) => `约 ${n} 个结果`, "search.relaxed": "没有完全匹配的结果，以下是相近的：",
    "search.none": "没有找到。换个说法试试？", "search.categories": "分类", "search.tags": "标签",
    "search.difficulty": "难度", "search.start": "输入问题里的词开始搜索，或者从分类开始浏览。",
    "search.filters": (n) => (n ? `筛选（${n}）` : "筛选"),
    "page.prev": "上一页", "page.next": "下一页", "page.n": (n) => `第 ${n} 页`,
    "q.answers": "答案", "q.similar": "相关问题", "q.edit": "编辑这个问题", "q.none": "还没有答案。",
    "q.notfound": "没有这个问题。",
    "d.easy": "简单", "d.medium": "中等", "d.hard": "困难",
    "study.title": "学习", "study.mode": "方式", "study.flashcard": "闪卡", "study.choice": "选择题",
    "study.any": "全部", "study.start": "开始", "study.reveal": "显示答案",
    "study.again": "忘了", "study.hard": "困难", "study.good": "记得", "study.easy": "简单",
    "study.progress": (done, total) => `${done} / ${total}`,
    "study.done": "这一轮的题都做完了。", "study.again_round": "再来一轮",
    "study.right": "答对了！", "study.wrong": "答错了。", "study.next": "下一题",
    "study.local": "没有学习令牌：进度保存在这个浏览器里。", "study.synced": (l) => `进度同步到服务器（学习者 ${l}）。`,
    "due.title": "今日复习", "due.none": "现在没有需要复习的题。", "due.never": "新题",
    "due.overdue": "已到期",
    "edit.new": "新问题", "edit.edit": "编辑问题", "edit.title": "问题", "edit.body": "补充说明（Markdown，可选）",
    "edit.category": "分类", "edit.tags": "标签（用逗号分隔）", "edit.difficulty": "难度",
    "edit.answers": "答案（Markdown）", "edit.addAnswer": "添加答案", "edit.remove": "删除",
    "edit.save": "保存", "edit.saved": "已保存。", "edit.needKey": "编辑需要写入密钥：请在“设置”里填写（只保存在这个标签页）。",
    "edit.conflict": "有人在你编辑时修改了这个问题。", "edit.reload": "重新加载", "edit.overwrite": "覆盖",
    "edit.invalid": "有些内容需要修改：",
    "set.title": "设置", "set.lang": "语言", "set.token": "学习令牌（kbl_…）", "set.tokenHelp":
      "学习令牌由你的学习应用提供，让复习记录同步到服务器。它只保存在这个浏览器里。",
    "set.key": "写入密钥（kb_…）", "set.keyHelp": "用于编辑题库；只保存在这个标签页，关闭即忘。",
    "set.save": "保存", "set.saved": "已保存。", "set.clear": "清除",
    "set.handover": (l) => `这个链接带来学习者“${l}”的学习令牌。使用它后，你的复习记录会同步给“${l}”。`,
    "set.accept": "使用这个令牌", "set.decline": "不用",
    "err.generic": "出错了：", "err.rate": "请求太频繁，请稍后再试。", "err.busy": "服务器正忙，请稍后再试。",
    "loading": "加载中…",
  },
  en: {
    "nav.search": "Search", "nav.study": "Study", "nav.due": "Due today", "nav.curate": "Curate",
    "nav.settings": "Settings", "foot.api": "API docs",
    "search.label": "Search questions", "search.placeholder": "e.g. GMP scheduler, sync.Map, 协程",
    "search.go": "Search", "search.results": (n) => `${n} results`, "search.about": (n) => `about ${n} results`, "search.relaxed": "Nothing matched exactly; these come close:",
    "search.none": "Nothing found. Try other words?", "search.categories": "Categories", "search.tags": "Tags",
    "search.difficulty": "Difficulty", "search.start": "Type words from a question to search, or browse by category.",
    "search.filters": (n) => (n ? `Filters (${n})` : "Filters"),
    "page.prev": "Previous", "page.next": "Next", "page.n": (n) => `Page ${n}`,
    "q.answers": "Answers", "q.similar": "Similar questions", "q.edit": "Edit this question", "q.none": "No answer yet.",
    "q.notfound": "No such question.",
    "d.easy": "easy", "d.medium": "medium", "d.hard": "hard",
    "study.title": "Study", "study.mode": "Mode", "study.flashcard": "Flashcards", "study.choice": "Multiple choice",
    "study.any": "All", "study.start": "Start", "study.reveal": "Show the answer",
    "study.again": "Again", "study.hard": "Hard", "study.good": "Good", "study.easy": "Easy",
    "study.progress": (done, total) => `${done} / ${total}`,
    "study.done": "You have been through every question of this round.", "study.again_round": "Another round",
    "study.right": "Right!", "study.wrong": "Not quite.", "study.next": "Next",
    "study.local": "No learner token: progress is kept in this browser.", "study.synced": (l) => `Progress syncs to the server (learner ${l}).`,
    "due.title": "Due today", "due.none": "Nothing is due right now.", "due.never": "new",
    "due.overdue": "due",
    "edit.new": "New question", "edit.edit": "Edit question", "edit.title": "Question", "edit.body": "Details (Markdown, optional)",
    "edit.category": "Category", "edit.tags": "Tags (comma-separated)", "edit.difficulty": "Difficulty",
    "edit.answers": "Answers (Markdown)", "edit.addAnswer": "Add an answer", "edit.remove": "Remove",
    "edit.save": "Save", "edit.saved": "Saved.", "edit.needKey": "Curating needs a write key: enter it under Settings (kept for this tab only).",
    "edit.conflict": "Someone changed this question while you were editing it.", "edit.reload": "Reload", "edit.overwrite": "Overwrite",
    "edit.invalid": "Some fields need changes:",
    "set.title": "Settings", "set.lang": "Language", "set.token": "Learner token (kbl_…)", "set.tokenHelp":
      "A learner token comes from your study app and syncs your reviews to the server. It is kept in this browser only.",
    "set.key": "Write key (kb_…)", "set.keyHelp": "For curating; kept for this tab only and forgotten when it closes.",
    "set.save": "Save", "set.saved": "Saved.", "set.clear": "Clear",
    "set.handover": (l) => `This link carries the learner token of “${l}”. With it, your reviews are recorded as ${l}'s.`,
    "set.accept": "Use this token", "set.decline": "No thanks",
    "err.generic": "Something went wrong: ", "err.rate": "Too many requests; try again shortly.", "err.busy": "The server is busy; try again shortly.",
    "loading": "Loading…",
  },
};

export let lang = localStorage.getItem("kb.lang") || "zh";

export function setLang(l) {
  lang = l;
  localStorage.setItem("kb.lang", l);
  document.documentElement.lang = l === "zh" ? "zh-CN" : "en";
}

export function t(key, ...args) {
  const v = TEXT[lang][key] ?? TEXT.zh[key] ?? key;
  return typeof v === "function" ? v(...args) : v;
}
