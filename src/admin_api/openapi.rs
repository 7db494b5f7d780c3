//! The OpenAPI 3 document of `/v1`, generated from the route table.

use super::{Access, ROUTES};
use serde_json::{json, Map, Value};

pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, template, summary, access) in ROUTES {
        let params: Vec<Value> = template
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
            },
        });
        if *access == Access::Public {
            op["security"] = json!([]);
        }
        if *access == Access::Admin {
            op["description"] = json!("Requires the admin role.");
        }
        let entry = paths.entry(template.to_string()).or_insert_with(|| json!({}));
        entry[method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "mcr admin API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "security": [{"bearer": []}, {"basic": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"error": {"type": "object", "properties": {
                            "code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"}
                        }}}
                    }}}
                }
            }
        }
    })
}
