-- cementleak built-in renderer: the format-specific part of the Quarto subset.
-- Numbers, captions and cross-references are already in the markdown (crossref.py); this
-- filter only decides how callouts, folded code, conditional content, speaker notes and
-- captioned tables look in each writer (FORMAT = html/html5, revealjs, docx, typst).

local is_slides = FORMAT == "revealjs"
local is_html = FORMAT:match("html") ~= nil or is_slides
local code_fold = "false"
local code_summary = "Code"
local doc_dir = nil

local function format_matches(word)
  if word == "html" then return is_html end
  if word == "revealjs" then return is_slides end
  if word == "pdf" or word == "typst" then return FORMAT == "typst" end
  if word == "docx" then return FORMAT == "docx" end
  return false
end

local function read_meta(meta)
  if meta["cl-code-fold"] then code_fold = pandoc.utils.stringify(meta["cl-code-fold"]) end
  if meta["cl-code-summary"] then code_summary = pandoc.utils.stringify(meta["cl-code-summary"]) end
  if meta["cl-doc-dir"] then doc_dir = pandoc.utils.stringify(meta["cl-doc-dir"]) end
end

local function is_style(block)
  -- a <style> element, read by pandoc as a raw block or as a paragraph of one raw inline
  local raw = block
  if block.t == "Plain" and #block.content == 1 then raw = block.content[1] end
  return (raw.t == "RawBlock" or raw.t == "RawInline") and raw.text:match("^%s*<style") ~= nil
end

local function html_tables(blocks)
  -- raw HTML holding a <table>: parse it into a real pandoc table
  local out = pandoc.Blocks({})
  for _, b in ipairs(blocks) do
    if b.t == "RawBlock" and b.format == "html" and b.text:find("<table") then
      for _, parsed in ipairs(pandoc.read(b.text, "html").blocks) do
        -- unwrap the plain <div> around a table and drop its <style> (pandas' repr): the
        -- table stands alone and takes the report's table style
        local blocks = (parsed.t == "Div" and parsed.identifier == "" and #parsed.classes == 0) and parsed.content or { parsed }
        for _, inner in ipairs(blocks) do
          if not is_style(inner) then
            out:insert(inner)
          end
        end
      end
    else
      out:insert(b)
    end
  end
  return out
end

local function table_float(div)
  local caption = div.content[1]
  local rest = html_tables(pandoc.Blocks({ table.unpack(div.content, 2) }))
  local found = false
  rest = rest:walk({
    Table = function(t)
      if found then return nil end
      found = true
      t.caption = { long = pandoc.Blocks({ pandoc.Plain(caption.content) }), short = nil }
      t.identifier = div.identifier
      return t
    end,
  })
  if not found then
    error("cementleak: the table cell at " .. (div.attributes["data-origin"] or "?") .. " displayed no table")
  end
  return rest
end

local callout_titles = { note = "Note", tip = "Tip", warning = "Warning", important = "Important", caution = "Caution" }

local function callout(div, kind)
  local title_inlines
  if div.attributes["title"] then
    local parsed = pandoc.read(div.attributes["title"], "markdown").blocks
    title_inlines = (#parsed > 0) and parsed[1].content or pandoc.Inlines({})
  else
    title_inlines = pandoc.Inlines({ pandoc.Str(callout_titles[kind]) })
  end
  if is_html then
    return pandoc.Div({
      pandoc.Div({ pandoc.Plain(title_inlines) }, { class = "callout-title" }),
      pandoc.Div(div.content, { class = "callout-body" }),
    }, { class = "callout callout-" .. kind })
  elseif FORMAT == "typst" then
    local title = pandoc.write(pandoc.Pandoc({ pandoc.Plain(title_inlines) }), "typst"):gsub("%s+$", "")
    local out = pandoc.Blocks({ pandoc.RawBlock("typst", '#callout(kind: "' .. kind .. '", title: [' .. title .. "])[") })
    out:extend(div.content)
    out:insert(pandoc.RawBlock("typst", "]"))
    return out
  else
    local out = pandoc.Blocks({ pandoc.Para({ pandoc.Strong(title_inlines) }) })
    out:extend(div.content)
    return pandoc.BlockQuote(out)
  end
end

local function Div(div)
  if div.classes:includes("cl-table") then
    return table_float(div)
  end
  for kind, _ in pairs(callout_titles) do
    if div.classes:includes("callout-" .. kind) then
      return callout(div, kind)
    end
  end
  if div.classes:includes("content-visible") or div.classes:includes("content-hidden") then
    local when, unless = div.attributes["when-format"], div.attributes["unless-format"]
    local shown = (when and format_matches(when)) or (unless and not format_matches(unless))
    if div.classes:includes("content-hidden") then shown = not shown end
    if shown then return div.content else return pandoc.Blocks({}) end
  end
  if div.classes:includes("notes") and not is_slides then
    return pandoc.Blocks({})
  end
end

local function RawBlock(raw)
  if not is_html and raw.format == "html" and raw.text:find("<table") then
    return html_tables(pandoc.Blocks({ raw }))
  end
end

local function CodeBlock(cb)
  if not cb.classes:includes("cell-code") then return nil end
  local fold = cb.attributes["code-fold"] or code_fold
  local summary = cb.attributes["code-summary"] or code_summary
  cb.attributes["code-fold"] = nil
  cb.attributes["code-summary"] = nil
  if FORMAT:match("html") == nil or fold == "false" then return cb end
  local open = (fold == "show") and " open" or ""
  summary = summary:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;")
  return {
    pandoc.RawBlock("html", '<details class="code-fold"' .. open .. "><summary>" .. summary .. "</summary>"),
    cb,
    pandoc.RawBlock("html", "</details>"),
  }
end

local function Image(img)
  if doc_dir and not img.src:match("^data:") and not img.src:match("^/") then
    img.src = pandoc.path.join({ doc_dir, img.src })
  end
  return img
end

return {
  { Meta = read_meta },
  { RawBlock = RawBlock, CodeBlock = CodeBlock, Image = Image },
  { Div = Div },
}
