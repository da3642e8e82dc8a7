"""The pair matrix's client driver for ``gemini``: the google-genai SDK, as a Gemini API client uses it.

``base_url`` is the proxy's URL and route prefix; the SDK adds ``/v1beta/models/{model}:generateContent``
(or ``:streamGenerateContent?alt=sse``). The tool round trip sends the model's turn back as the SDK received it
(thought signatures included) and the result as a ``functionResponse`` naming the call's id when it had one.
"""

from __future__ import annotations

from typing import Any

from google import genai
from google.genai import types

from tests.pairs import TOOL_DESCRIPTION, TOOL_NAME, TOOL_PARAMETERS, Call, Outcome

_STOPS = {types.FinishReason.MAX_TOKENS: "max_tokens"}


class GeminiDriver:
    def ask(self, base_url: str, model: str, prompt: str, *, stream: bool, tool: bool) -> Outcome:
        contents = [types.Content(role="user", parts=[types.Part(text=prompt)])]
        return self._send(base_url, model, contents, stream=stream, tool=tool)

    def answer_tool(
        self, base_url: str, model: str, prompt: str, first: Outcome, result: str, *, stream: bool
    ) -> Outcome:
        call = first.calls[0]
        model_parts = [
            types.Part(function_call=types.FunctionCall(id=c.id or None, name=c.name, args=c.arguments))
            for c in first.calls
        ]
        response = types.FunctionResponse(id=call.id or None, name=call.name, response={"output": result})
        contents = [
            types.Content(role="user", parts=[types.Part(text=prompt)]),
            types.Content(role="model", parts=model_parts),
            types.Content(role="user", parts=[types.Part(function_response=response)]),
        ]
        return self._send(base_url, model, contents, stream=stream, tool=True)

    def _send(self, base_url: str, model: str, contents: list[types.Content], *, stream: bool, tool: bool) -> Outcome:
        client = genai.Client(
            api_key="pair-key", http_options=types.HttpOptions(base_url=base_url, api_version="v1beta")
        )
        config = types.GenerateContentConfig(
            tools=[_tool()] if tool else None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        try:
            if stream:
                chunks = list(client.models.generate_content_stream(model=model, contents=contents, config=config))
            else:
                chunks = [client.models.generate_content(model=model, contents=contents, config=config)]
        finally:
            client.close()
        return _outcome(chunks)


def _tool() -> types.Tool:
    declaration = types.FunctionDeclaration(
        name=TOOL_NAME, description=TOOL_DESCRIPTION, parameters_json_schema=TOOL_PARAMETERS
    )
    return types.Tool(function_declarations=[declaration])


def _outcome(chunks: list[types.GenerateContentResponse]) -> Outcome:
    text: list[str] = []
    calls: list[Call] = []
    finish: types.FinishReason | None = None
    for chunk in chunks:
        candidate = chunk.candidates[0] if chunk.candidates else None
        if candidate is None:
            continue
        finish = candidate.finish_reason or finish
        for part in candidate.content.parts or [] if candidate.content else []:
            if part.function_call is not None:
                args: dict[str, Any] = dict(part.function_call.args or {})
                calls.append(Call(id=part.function_call.id or "", name=part.function_call.name or "", arguments=args))
            elif part.text and not part.thought:
                text.append(part.text)
    usage = chunks[-1].usage_metadata if chunks else None
    prompt = usage.prompt_token_count or 0 if usage else 0
    output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0) if usage else 0
    stop = "tool_use" if calls else _STOPS.get(finish, "end_turn") if finish is not None else "end_turn"
    return Outcome(text="".join(text), stop=stop, input_tokens=prompt, output_tokens=output, calls=tuple(calls))


DRIVER = GeminiDriver()
