-- Driven by tests/editors.rs:
--   nvim --headless --clean -l index_finding.lua RUNTIME BIN FILE CODE MODELS OLD NEW
-- Loads the shipped config from RUNTIME/lsp/, opens FILE and, with no edit, waits for
-- django-orm-lsp's CODE finding (one that needs the model index), printing how long it took and
-- every finding the buffer shows then. Then opens MODELS, replaces OLD with NEW, writes it, and
-- waits for CODE to leave FILE's diagnostics (FILE itself never edited).
local runtime, bin, file, code = arg[1], arg[2], arg[3], arg[4]
local models, old, new = arg[5], arg[6], arg[7]

vim.opt.runtimepath:prepend(runtime)
vim.lsp.config('django_orm_lsp', { cmd = { bin, 'serve' } })
vim.lsp.enable('django_orm_lsp')
local started = vim.uv.hrtime()
vim.cmd.edit(file)
local buf = vim.api.nvim_get_current_buf()

local found
-- Bounded, so that a server that never reports fails the test instead of hanging it.
local ok = vim.wait(120000, function()
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if tostring(d.code) == code then
      found = d
      return true
    end
  end
  return false
end, 50)
local codes = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  table.insert(codes, tostring(d.code) .. '@' .. (d.lnum + 1))
end
print('shown: ' .. table.concat(codes, ','))
if not ok then
  error('gave up waiting for ' .. code)
end
print(string.format('found: %s on line %d after %d ms', code, found.lnum + 1,
  (vim.uv.hrtime() - started) / 1e6))

local view = buf
vim.cmd.split(models)
local models_buf = vim.api.nvim_get_current_buf()
local lines = vim.api.nvim_buf_get_lines(models_buf, 0, -1, false)
local text = table.concat(lines, '\n')
local start, finish = text:find(old, 1, true)
if not start then
  error('no ' .. old .. ' in ' .. models)
end
text = text:sub(1, start - 1) .. new .. text:sub(finish + 1)
vim.api.nvim_buf_set_lines(models_buf, 0, -1, false, vim.split(text, '\n', { plain = true }))
local changed = vim.uv.hrtime()
vim.cmd.write()
local gone = vim.wait(60000, function()
  for _, d in ipairs(vim.diagnostic.get(view)) do
    if tostring(d.code) == code then
      return false
    end
  end
  return true
end, 50)
if not gone then
  error(code .. ' stayed after the models changed')
end
print(string.format('gone: %s after the models change, %d ms', code, (vim.uv.hrtime() - changed) / 1e6))
