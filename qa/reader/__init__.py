"""The reader: shows the model the chosen documents and gets back an answer with the
evidence it copied (context, prompt and reply form, evidence location, the reader itself)."""
