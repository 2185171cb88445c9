"""Web: the Gradio chat (page, rendering of answers and sources, uploads, the document
viewer, conversations kept in the browser, example questions)."""
