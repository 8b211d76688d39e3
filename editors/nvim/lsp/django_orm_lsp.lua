-- django-orm-lsp for Neovim 0.11+. With this folder on 'runtimepath' (or this file copied to
-- ~/.config/nvim/lsp/), `vim.lsp.enable('django_orm_lsp')` starts it for Python buffers
-- and Django templates.
-- Override any key with vim.lsp.config('django_orm_lsp', { ... }), e.g. init_options =
-- { ignore = { 'ORM105' } }; the server reads select, ignore and severity from there.
return {
  cmd = { 'django-orm-lsp', 'serve' },
  -- Django templates too: the server shows there what ORM410 finds in the views rendering them.
  filetypes = { 'python', 'htmldjango' },
  -- manage.py first: in a monorepo the Django project, not the repository, is the workspace.
  root_markers = { 'manage.py', 'pyproject.toml', '.git' },
  -- The queries each loop runs (`1 + N queries`) as code lenses, which Neovim fetches only when
  -- asked: on entering the buffer, leaving insert mode, saving and resting the cursor.
  on_attach = function(client, bufnr)
    if not client:supports_method('textDocument/codeLens') then
      return
    end
    vim.lsp.codelens.refresh({ bufnr = bufnr })
    vim.api.nvim_create_autocmd({ 'BufEnter', 'InsertLeave', 'BufWritePost', 'CursorHold' }, {
      buffer = bufnr,
      callback = function()
        vim.lsp.codelens.refresh({ bufnr = bufnr })
      end,
    })
  end,
}
