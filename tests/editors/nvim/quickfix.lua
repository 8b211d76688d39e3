-- Driven by tests/editors.rs: nvim --headless --clean -l quickfix.lua RUNTIME BIN FILE LINE
-- Loads the shipped config from RUNTIME/lsp/, opens FILE, waits for django-orm-lsp's diagnostic
-- on LINE (1-based), applies its quick fix through the code-action menu and prints the line,
-- then the code lenses saving it refreshed and the queries the first N+1 lens shows when run.
local runtime, bin, file, line = arg[1], arg[2], arg[3], tonumber(arg[4])

vim.opt.runtimepath:prepend(runtime)
-- Only the binary changes: filetypes and root markers come from editors/nvim/lsp/.
vim.lsp.config('django_orm_lsp', { cmd = { bin, 'serve' } })
vim.lsp.enable('django_orm_lsp')
vim.cmd.edit(file)
local buf = vim.api.nvim_get_current_buf()

-- Waits are bounded so a broken server fails the test instead of hanging it; the Rust side
-- also runs nvim under `timeout`.
local function wait_for(what, condition)
  if not vim.wait(60000, condition, 50) then
    error('gave up waiting for ' .. what)
  end
end

local diagnostic
wait_for('a diagnostic on line ' .. line, function()
  for _, d in ipairs(vim.diagnostic.get(buf, { lnum = line - 1 })) do
    if d.source == 'django-orm-lsp' or tostring(d.code):match('^ORM') then
      diagnostic = d
      return true
    end
  end
  return false
end)
print('diagnostic: ' .. tostring(diagnostic.code) .. ' ' .. diagnostic.message)
-- The workspace root the shipped root_markers chose.
print('root: ' .. vim.lsp.get_clients({ bufnr = buf, name = 'django_orm_lsp' })[1].root_dir)

local offered = {}
-- The code-action menu waits for a key press; choose the fix, as a user would.
vim.ui.select = function(items, opts, on_choice)
  local choice
  for i, item in ipairs(items) do
    local title = opts.format_item and opts.format_item(item) or tostring(item)
    table.insert(offered, title)
    if not choice and item.action and item.action.kind == 'quickfix' and title:match('^Replace') then
      choice = i
    end
  end
  on_choice(items[choice], choice)
end

local before = vim.api.nvim_buf_get_lines(buf, line - 1, line, false)[1]
vim.api.nvim_win_set_cursor(0, { line, diagnostic.col })
vim.lsp.buf.code_action()
wait_for('the fix to change line ' .. line, function()
  return vim.api.nvim_buf_get_lines(buf, line - 1, line, false)[1] ~= before
end)
print('offered: ' .. table.concat(offered, ' | '))
print('line: ' .. vim.api.nvim_buf_get_lines(buf, line - 1, line, false)[1])
vim.cmd.write()

-- Saving refreshed the code lenses (the shipped config asks for them on BufWritePost).
local titles
wait_for('code lenses', function()
  titles = {}
  for _, lens in ipairs(vim.lsp.codelens.get(buf)) do
    if lens.command and lens.command.title:match('quer') then
      table.insert(titles, (lens.range.start.line + 1) .. ': ' .. lens.command.title)
    end
  end
  return #titles > 0
end)
print('lenses: ' .. table.concat(titles, ' | '))

-- Running the first loop's lens (as `:lua vim.lsp.codelens.run()` on its line does) opens the
-- queries it counts in a buffer of their own.
local lens_line = tonumber(titles[1]:match('^(%d+):'))
for _, title in ipairs(titles) do
  if title:match(': %d+ %+ ') then
    lens_line = tonumber(title:match('^(%d+):'))
    break
  end
end
vim.api.nvim_win_set_cursor(0, { lens_line, 0 })
vim.lsp.codelens.run()
wait_for('the queries of the lens on line ' .. lens_line, function()
  return vim.api.nvim_buf_get_name(0):match('%.sql$') ~= nil
end)
print('queries: ' .. table.concat(vim.api.nvim_buf_get_lines(0, 0, 5, false), ' / '))
