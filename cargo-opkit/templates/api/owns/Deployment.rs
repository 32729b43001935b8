{% call dependent("Deployment", ["The " ~ kind ~ "'s Deployment: `replicas` pods running `image`."]) %}
        Deployment {
            metadata: metadata({= var =}),
            spec: Some(DeploymentSpec {
                replicas: Some({= var =}.spec.replicas),
                selector: selector({= var =}),
                template: pod_template({= var =}),
                ..Default::default()
            }),
            ..Default::default()
        }
{% endcall %}
